"""Triggers that wait for calls in the triggerer, so the task holds no worker slot.

Both poll through ``FuseHook.aget_call`` (aiohttp, one shared session per event loop), ride out
transient errors until their own deadline, and yield one small JSON event.

* ``FuseCallTrigger``, one call: ``{"status", "call_id", "call_details", "message"}`` where
  ``status`` is the call's terminal status, ``"timeout"`` or ``"error"``.
* ``FuseCallsTrigger``, a campaign: ``{"status", "message", "calls", "requests"}`` where ``status``
  is ``"done"`` (every call ended), ``"timeout"`` or ``"error"``, ``calls`` holds one
  ``[call_id, status, attempts, masked_phone]`` per call in the order given (status None when never
  read) and ``requests`` counts the status requests sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp  # noqa: F401  (imported here, with the triggers, so the first poll doesn't block the loop on it)
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_fuse import DEFAULT_CONN_ID, protocol
from airflow_provider_fuse.exceptions import (
    FuseConnectionError,
    FuseError,
    FuseRateLimitError,
    FuseResponseError,
    FuseServerError,
    FuseWaitTimeout,
)
from airflow_provider_fuse.models import CallDetails
from airflow_provider_fuse.phone import mask_phone

TIMEOUT = "timeout"
ERROR = "error"
DONE = "done"
NOT_CANCELLED = (
    "NOT cancelled: it may still ring. Cancelling is deployment-wide, see CancelPendingCallsOperator."
)
#: Failures that say nothing about the call: keep waiting (the hook already backed off).
TRANSIENT_ERRORS = (FuseConnectionError, FuseRateLimitError, FuseServerError, FuseResponseError)


def call_event(status: str, call_id: str, details: CallDetails | None, message: str) -> dict[str, Any]:
    return {
        "status": status,
        "call_id": call_id,
        "call_details": details.to_dict() if details else None,
        "message": message,
    }


def outcome(details: CallDetails) -> dict[str, Any]:
    """A terminal call's task result: its details when completed, else ``FuseCallFailed``."""
    if details.succeeded:
        return details.to_dict()
    raise details.failure()


def outcome_from_event(event: dict[str, Any]) -> dict[str, Any]:
    """Decide a task from a trigger event with the same rules as the synchronous wait."""
    status = event.get("status")
    if status == TIMEOUT:
        raise FuseWaitTimeout(event.get("message") or "Waiting for the Fuse call timed out.")
    if status == ERROR or not event.get("call_details"):
        raise FuseError(event.get("message") or f"Waiting for Fuse call {event.get('call_id')} failed.")
    return outcome(CallDetails.from_dict(event["call_details"]))


def timeout_message(call_id: str, details: CallDetails | None, deadline: float) -> str:
    status = details.status if details else "unknown"
    return (
        f"Fuse call {call_id} was still {status!r} at the deadline ({_utc(deadline)}). "
        f"The call itself was {NOT_CANCELLED}"
    )


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))


def _killed(log: logging.Logger | Any, what: str) -> None:
    log.warning(
        "Task killed while waiting for %s; Fuse is NOT asked to cancel anything (cancelling is "
        "deployment-wide: use CancelPendingCallsOperator if you mean it).",
        what,
    )


class FuseCallTrigger(BaseTrigger):
    """Poll one Fuse call until it is terminal or ``deadline`` (Unix seconds) passes.

    :param call_id: the Fuse call id.
    :param fuse_conn_id: Airflow connection of type ``fuse``.
    :param poll_interval: seconds between status requests.
    :param deadline: Unix time after which the wait ends with a ``timeout`` event; None waits forever.
    """

    def __init__(
        self,
        call_id: str,
        fuse_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 30.0,
        deadline: float | None = None,
    ):
        super().__init__()
        self.call_id = str(call_id)
        self.fuse_conn_id = fuse_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "call_id": self.call_id,
                "fuse_conn_id": self.fuse_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_fuse.hooks.fuse import FuseHook

        hook = FuseHook(self.fuse_conn_id)
        details: CallDetails | None = None
        try:
            async with hook.hold_session():
                while True:
                    remaining = None if self.deadline is None else self.deadline - time.time()
                    try:
                        # Retries inside one poll (Retry-After, backoff, slow answers) end at the deadline.
                        details = await asyncio.wait_for(hook.aget_call(self.call_id), timeout=remaining)
                    except TRANSIENT_ERRORS as err:
                        self.log.warning("Fuse call %s: status not read, will retry: %s", self.call_id, err)
                    except asyncio.TimeoutError:
                        self.log.warning("Fuse call %s: status not read before the deadline.", self.call_id)
                    else:
                        if details.is_terminal:
                            message = f"Fuse call {self.call_id} ended {details.status!r}."
                            yield TriggerEvent(call_event(details.status, self.call_id, details, message))
                            return
                    remaining = None if self.deadline is None else self.deadline - time.time()
                    if remaining is not None and remaining <= 0:
                        message = timeout_message(self.call_id, details, self.deadline or 0)
                        yield TriggerEvent(call_event(TIMEOUT, self.call_id, details, message))
                        return
                    # +-10% jitter keeps thousands of triggers from polling in lockstep after a stall.
                    interval = self.poll_interval * random.uniform(0.9, 1.1)
                    await asyncio.sleep(interval if remaining is None else min(interval, remaining))
        except FuseError as err:
            yield TriggerEvent(call_event(ERROR, self.call_id, details, str(err)))

    async def on_kill(self) -> None:
        """Airflow 3.3+: the task was killed by a user. Fuse cannot cancel one call, so nothing is cancelled."""
        _killed(self.log, f"Fuse call {self.call_id}")


# --- many calls --------------------------------------------------------------------------------

#: A call with no news is polled less and less often, at most this many poll intervals apart.
MAX_BACKOFF_POLLS = 5
#: Transient errors logged one by one; after that, one line every this many.
_TRANSIENT_LOGGED = 10
_TRANSIENT_EVERY = 100


class RequestPacer:
    """A token bucket: at most ``rate`` requests a second on average, bursts of one second's worth."""

    def __init__(self, rate: float, now: float):
        if rate <= 0:
            raise ValueError(f"max_requests_per_second must be positive, got {rate!r}")
        self.rate = float(rate)
        self._capacity = max(1.0, self.rate)
        self._tokens = self._capacity
        self._at = now

    def delay(self, now: float) -> float:
        """Seconds to wait before sending one more request; its token is taken now."""
        self._refill(now)
        self._tokens -= 1
        return max(0.0, -self._tokens / self.rate)

    def hold(self, seconds: float, now: float) -> None:
        """Fuse answered 429 even after the hook's retries: send nothing for ``seconds``."""
        self._refill(now)
        self._tokens = min(self._tokens, -seconds * self.rate)

    def _refill(self, now: float) -> None:
        self._tokens = min(self._capacity, self._tokens + max(0.0, now - self._at) * self.rate)
        self._at = max(self._at, now)


@dataclass
class _Call:
    status: str | None = None
    attempts: int | None = None
    phone: str | None = None
    quiet: int = 0  # polls in a row that brought no news


class CallsPoller:
    """Which call to poll next and when, for FuseCallsTrigger and for the worker's wait alike.

    * A call is first polled one ``poll_interval`` after its start (``not_before``, Unix seconds),
      never before: a call cannot end before it has rung.
    * Next polls follow ``poll_interval`` apart; between two attempts, after the call's
      ``reattempt_wait``; a call still waiting to be dialed, twice as long each time. Never more than
      ``MAX_BACKOFF_POLLS`` intervals apart, so a call is seen at most that late.
    * Terminal calls are dropped. When more calls are due than the rate allows, those most likely
      to have ended go first: connected, then dialing, then between attempts, then the rest.
    """

    def __init__(
        self,
        call_ids: Sequence[str],
        *,
        poll_interval: float,
        now: float,
        not_before: Mapping[str, float] | None = None,
        log: logging.Logger | Any,
    ):
        self.poll_interval = float(poll_interval)
        self.requests = 0
        self._order = list(call_ids)
        self._calls = {call_id: _Call() for call_id in self._order}
        self._open = set(self._calls)
        self._waiting: list[tuple[float, int, str]] = []  # (due, tie-breaker, call id)
        self._ready: list[tuple[int, float, int, str]] = []  # (rank, due, tie-breaker, call id)
        self._ticket = itertools.count()
        self._transient = 0
        self._reported_tenths = 0
        self._log = log
        starts = not_before or {}
        for call_id in self._calls:
            self._wait(call_id, max(now, starts.get(call_id, now)) + self.poll_interval)

    @property
    def pending(self) -> int:
        """Calls not known to have ended (in flight included)."""
        return len(self._open)

    def next_call(self, now: float) -> str | None:
        """The due call most likely to have ended, or None when no call is due."""
        while self._waiting and self._waiting[0][0] <= now:
            due, ticket, call_id = heapq.heappop(self._waiting)
            heapq.heappush(self._ready, (self._rank(self._calls[call_id]), due, ticket, call_id))
        return heapq.heappop(self._ready)[3] if self._ready else None

    def seconds_to_wait(self, now: float, deadline: float | None) -> float | None:
        """Until the next call is due or the deadline; None when only a poll in flight can wake us."""
        times = [t for t in (self._waiting[0][0] if self._waiting else None, deadline) if t is not None]
        return max(0.0, min(times) - now) if times else None

    def record(self, call_id: str, details: CallDetails, now: float) -> None:
        """A status answer: drop the call if it ended, else schedule its next poll."""
        self.requests += 1
        call = self._calls[call_id]
        news = (details.status, details.attempts) != (call.status, call.attempts)
        call.status, call.attempts = details.status, details.attempts
        call.phone = mask_phone(details.phone_number) if details.phone_number else call.phone
        call.quiet = 0 if news else call.quiet + 1
        if details.is_terminal:
            self._open.discard(call_id)
            self._report_progress()
        else:
            self._wait(call_id, now + self._gap(call, details))

    def ride_out(self, call_id: str, error: FuseError, now: float) -> bool:
        """A failed status request: True (poll again later) when transient, False when permanent."""
        if not isinstance(error, TRANSIENT_ERRORS):
            return False
        self.requests += 1
        self._transient += 1
        if self._transient <= _TRANSIENT_LOGGED or self._transient % _TRANSIENT_EVERY == 0:
            self._log.warning(
                "Fuse call %s: status not read (%s transient errors so far), will retry: %s",
                call_id,
                self._transient,
                error,
            )
        self._wait(call_id, now + self.poll_interval)
        return True

    def event(self, deadline: float | None = None, error: FuseError | None = None) -> dict[str, Any]:
        """The one event: ``done`` when every call ended, else ``error`` or ``timeout``."""
        total = len(self._order)
        if error is not None:
            status, message = ERROR, f"{error} ({total - self.pending:,} of {total:,} calls had ended.)"
        elif not self.pending:
            status, message = DONE, f"All {total:,} Fuse calls ended: {self._totals(self._order)}."
        else:
            status = TIMEOUT
            message = (
                f"{self.pending:,} of {total:,} Fuse calls had not ended at the deadline "
                f"({_utc(deadline or time.time())}): {self._totals(self._open)}. They were {NOT_CANCELLED}"
            )
        calls = [[i, c.status, c.attempts, c.phone] for i, c in ((i, self._calls[i]) for i in self._order)]
        return {"status": status, "message": message, "calls": calls, "requests": self.requests}

    def _wait(self, call_id: str, due: float) -> None:
        heapq.heappush(self._waiting, (due, next(self._ticket), call_id))

    def _gap(self, call: _Call, details: CallDetails) -> float:
        if details.status == protocol.QUEUED and details.attempts:  # between two attempts
            gap = float(details.reattempt_wait or self.poll_interval)
        elif details.status in protocol.ACTIVE_STATUSES and details.status != protocol.QUEUED:
            gap = self.poll_interval
        else:  # not dialed yet, or a status this provider does not know
            gap = self.poll_interval * 2 ** min(call.quiet, MAX_BACKOFF_POLLS)
        return min(max(gap, self.poll_interval), MAX_BACKOFF_POLLS * self.poll_interval)

    @staticmethod
    def _rank(call: _Call) -> int:
        if call.status == protocol.CONNECTED:
            return 0
        if call.status == protocol.DIALING:
            return 1
        return 2 if call.status == protocol.QUEUED and call.attempts else 3

    def _totals(self, call_ids: Iterable[str]) -> str:
        counts = Counter(self._calls[i].status or "not read" for i in call_ids)
        return ", ".join(f"{status} {count:,}" for status, count in counts.most_common())

    def _report_progress(self) -> None:
        total = len(self._order)
        tenths = (total - self.pending) * 10 // total
        if tenths > self._reported_tenths:
            self._reported_tenths = tenths
            self._log.info(
                "%s of %s Fuse calls ended (%s status requests so far).",
                f"{total - self.pending:,}",
                f"{total:,}",
                f"{self.requests:,}",
            )


def calls_not_before(pairs: Iterable[Sequence[Any]] | None) -> dict[str, float]:
    """``[(unix_time, call_ids), ...]`` as ``{call_id: unix_time}``."""
    return {call_id: float(at) for at, call_ids in pairs or () for call_id in call_ids}


class FuseCallsTrigger(BaseTrigger):
    """Poll many Fuse calls until every one has ended or ``deadline`` (Unix seconds) passes.

    One trigger per campaign instead of one per call: a bounded number of requests in flight, a
    ceiling on requests per second (Fuse documents no rate limit and warns against floods), and
    the pacing of :class:`CallsPoller`. A triggerer restart rebuilds it from ``serialize()``; it
    then polls every call again and finishes.

    :param call_ids: the Fuse call ids; the event lists them in this order.
    :param fuse_conn_id: Airflow connection of type ``fuse``.
    :param poll_interval: seconds between two polls of one call (the shortest gap).
    :param deadline: Unix time after which the wait ends with a ``timeout`` event; None waits forever.
    :param not_before: ``[(unix_time, call_ids), ...]``: calls that may not start before that time
        (a later start_timestamp, calling hours), so not polled before it.
    :param max_concurrency: status requests in flight at once.
    :param max_requests_per_second: the ceiling on status requests per second.
    """

    def __init__(
        self,
        call_ids: Sequence[str | Sequence[int]],
        fuse_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 60.0,
        deadline: float | None = None,
        not_before: Sequence[Sequence[Any]] | None = None,
        max_concurrency: int = 10,
        max_requests_per_second: float = 10.0,
    ):
        from airflow_provider_fuse.campaign import unpack_ids

        super().__init__()
        if int(max_concurrency) < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency!r}")
        if float(max_requests_per_second) <= 0:
            raise ValueError(f"max_requests_per_second must be positive, got {max_requests_per_second!r}")
        self.call_ids = unpack_ids(call_ids)
        self.fuse_conn_id = fuse_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = deadline
        self.not_before = [(float(at), unpack_ids(ids)) for at, ids in not_before or ()]
        self.max_concurrency = int(max_concurrency)
        self.max_requests_per_second = float(max_requests_per_second)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Call ids packed into runs, so 10,000 consecutive ids cost a few bytes of kwargs."""
        from airflow_provider_fuse.campaign import pack_ids

        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "call_ids": pack_ids(self.call_ids),
                "fuse_conn_id": self.fuse_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "not_before": [[at, pack_ids(ids)] for at, ids in self.not_before] or None,
                "max_concurrency": self.max_concurrency,
                "max_requests_per_second": self.max_requests_per_second,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_fuse.hooks.fuse import FuseHook

        hook = FuseHook(self.fuse_conn_id)
        poller = CallsPoller(
            self.call_ids,
            poll_interval=self.poll_interval,
            now=time.time(),
            not_before=calls_not_before(self.not_before),
            log=self.log,
        )
        self.log.info("Tracking %s Fuse calls.", f"{len(self.call_ids):,}")
        try:
            async with hook.hold_session():
                error = await self._track(hook, poller)
        except FuseError as err:  # the connection cannot be read or used
            error = err
        yield TriggerEvent(poller.event(self.deadline, error))

    async def _track(self, hook: Any, poller: CallsPoller) -> FuseError | None:
        """Poll until every call ended, the deadline passed, or a permanent error (returned)."""
        pacer = RequestPacer(self.max_requests_per_second, time.monotonic())
        slots = asyncio.Semaphore(self.max_concurrency)
        news = asyncio.Event()
        in_flight: set[asyncio.Task[None]] = set()
        errors: list[FuseError] = []

        async def poll(call_id: str) -> None:
            try:
                details = await hook.aget_call(call_id)
            except FuseError as err:
                if not poller.ride_out(call_id, err, time.time()):
                    errors.append(err)
                elif isinstance(err, FuseRateLimitError):
                    pacer.hold(err.retry_after or self.poll_interval, time.monotonic())
            except Exception as err:  # a call left unpolled would keep the wait open forever
                errors.append(FuseError(f"Polling Fuse call {call_id} failed unexpectedly: {err!r}"))
            else:
                poller.record(call_id, details, time.time())
            finally:
                slots.release()
                news.set()

        try:
            while poller.pending and not errors:
                if not await _acquire_before(slots, self.deadline):
                    break
                call_id = poller.next_call(time.time())
                if call_id is None:
                    slots.release()
                    if not poller.pending or errors:  # the last polls ended while we waited for a slot
                        break
                    news.clear()
                    await _nap(news, poller.seconds_to_wait(time.time(), self.deadline))
                    continue
                if delay := pacer.delay(time.monotonic()):
                    await asyncio.sleep(delay)
                task = asyncio.create_task(poll(call_id))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
        return errors[0] if errors else None

    async def on_kill(self) -> None:
        """Airflow 3.3+: the task was killed by a user; nothing is cancelled in Fuse."""
        _killed(self.log, f"{len(self.call_ids):,} Fuse calls")


async def _acquire_before(slots: asyncio.Semaphore, deadline: float | None) -> bool:
    """A free slot, unless the deadline passes first (polls in flight may be retrying for long)."""
    remaining = None if deadline is None else deadline - time.time()
    if remaining is not None and remaining <= 0:
        return False
    try:
        await asyncio.wait_for(slots.acquire(), remaining)
    except asyncio.TimeoutError:
        return False
    return True


async def _nap(news: asyncio.Event, seconds: float | None) -> None:
    """Sleep until a poll in flight reports (``news``) or ``seconds`` pass."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(news.wait(), seconds)

"""Waiting for calls: the events, the decisions, the pacing, and the loops that wait in a worker.

The triggers (:mod:`airflow_provider_fuse.triggers.fuse`) wait in the triggerer with these rules;
the operators and the sensor wait in the worker with the same ones, and decide a task from a
trigger event or from a status alike. Nothing here imports aiohttp: a synchronous wait stays light.

* One call's event (:class:`CallTriggerEvent`): ``{"status", "call_id", "call_details", "message"}``
  where ``status`` is the call's terminal status, ``"timeout"`` or ``"error"``.
* Many calls' event (:class:`CallsTriggerEvent`): ``{"status", "message", "calls", "requests"}``
  where ``status`` is ``"done"`` (every call ended), ``"timeout"`` or ``"error"``, ``calls`` holds one
  ``[call_id, status, attempts, masked_phone]`` per call in the order given (status None when never
  read), ``requests`` counts the status requests sent and ``callbacks`` the calls whose outcome
  came by result_url callback.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_provider_fuse import protocol
from airflow_provider_fuse.exceptions import (
    FuseCallFailed,
    FuseConnectionError,
    FuseError,
    FuseNotFoundError,
    FuseRateLimitError,
    FuseResponseError,
    FuseServerError,
    FuseWaitTimeout,
)
from airflow_provider_fuse.models import UNKNOWN_STATUS, CallDetails, CallDetailsDict, CallStatus
from airflow_provider_fuse.phone import mask_phone

if TYPE_CHECKING:
    from airflow_provider_fuse.campaign import CampaignQueued, CampaignResult, QueuedChunk
    from airflow_provider_fuse.hooks.fuse import FuseHook

#: Event statuses besides a call's own terminal status.
TIMEOUT = "timeout"
ERROR = "error"
DONE = "done"
NOT_CANCELLED = (
    "NOT cancelled: it may still ring. Cancelling is deployment-wide, see CancelPendingCallsOperator."
)
#: Failures that say nothing about the call: keep waiting (the hook already backed off).
TRANSIENT_ERRORS = (FuseConnectionError, FuseRateLimitError, FuseServerError, FuseResponseError)
#: A call with no news is polled less and less often, at most this many poll intervals apart.
MAX_BACKOFF_POLLS = 5
#: Transient errors logged one by one; after that, one line every this many.
_TRANSIENT_LOGGED = 10
_TRANSIENT_EVERY = 100

Log = logging.Logger | Any


class CallTriggerEvent(TypedDict):
    """The one event of a wait for one call."""

    status: str
    call_id: str
    call_details: CallDetailsDict | None
    message: str


class CallsTriggerEvent(TypedDict):
    """The one event of a wait for many calls; ``calls`` rows are ``[call_id, status, attempts, phone]``."""

    status: str
    message: str
    calls: list[list[Any]]
    requests: int
    unknown_statuses: list[str]  # statuses Fuse reported that this provider does not know, once each
    callbacks: int  # calls whose outcome came by result_url callback (no status request)
    untracked_rows: list[list[Any]]  # [row, status, attempts] of calls queued without ids, by callback


class UnknownStatuses:
    """Statuses Fuse reports that this provider does not know (protocol.py lists the known ones).

    Such a status is kept as-is and treated as not ended; each value is logged once per wait (a
    task's). A call still reporting one at ``give_up_at`` (Unix time: the end of its dialing window
    plus ``resume.LAST_ATTEMPT_SECONDS``, see :func:`give_up_unknown_at`) ends with status
    ``unknown`` instead of running to the wait's timeout. ``seen`` lists the values, for the result.
    """

    def __init__(self, give_up_at: float | None, log: Log, seen: Iterable[str] = ()):
        self.give_up_at = give_up_at
        self.seen: list[str] = list(seen)
        self._log = log

    def check(self, call_id: str, details: CallDetails, now: float) -> CallDetails | None:
        """None for a known status; else the details, with status ``unknown`` once past ``give_up_at``."""
        if CallStatus.is_known(details.status) or details.status == UNKNOWN_STATUS:
            return None
        if details.status not in self.seen:
            self.seen.append(details.status)
            self._log.warning(
                "Fuse reports status %r (first seen on call %s), which this provider does not know: kept "
                "as-is and treated as not ended (logged once per status).",
                details.status,
                call_id,
            )
        if self.give_up_at is None or now < self.give_up_at:
            return details
        self._log.warning(
            "Fuse call %s still reports %r past its dialing window and grace (%s): it ends 'unknown'.",
            call_id,
            details.status,
            _utc(self.give_up_at),
        )
        return replace(details, status=UNKNOWN_STATUS)


def give_up_unknown_at(requests: Iterable[Any], now: float) -> float:
    """When calls reporting only unknown statuses end ``unknown``: their window, plus the grace
    (``resume.LAST_ATTEMPT_SECONDS``) that the task state store also keeps their ids for."""
    from airflow_provider_fuse.resume import calls_end_within

    return now + calls_end_within(requests, now)


def deadline_after(timeout: float | None) -> float | None:
    """The Unix time a wait of ``timeout`` seconds starting now ends at (None: never)."""
    return None if timeout is None else time.time() + timeout


# --- one call --------------------------------------------------------------------------------------


def call_event(status: str, call_id: str, details: CallDetails | None, message: str) -> CallTriggerEvent:
    return {
        "status": status,
        "call_id": call_id,
        "call_details": details.to_dict() if details else None,
        "message": message,
    }


def outcome(details: CallDetails) -> CallDetailsDict:
    """A terminal call's task result: its details when completed, else ``FuseCallFailed``."""
    if details.succeeded:
        return details.to_dict()
    raise details.failure()


def outcome_from_event(event: Mapping[str, Any]) -> CallDetailsDict:
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


def until_deadline(seconds: float, deadline: float | None) -> float:
    """``seconds``, cut so that a sleep starting now ends by ``deadline`` (Unix time; None: never)."""
    return seconds if deadline is None else max(0.0, min(seconds, deadline - time.time()))


def pause_before_next_poll(interval: float, error: BaseException | None, deadline: float | None) -> float:
    """Seconds until the next status request: the interval, or longer when Fuse asked (Retry-After,
    already capped by the hook), never past the deadline."""
    return until_deadline(max(interval, getattr(error, "retry_after", None) or 0.0), deadline)


def hold_if_asked(pacer: RequestPacer, error: FuseError, poll_interval: float, now: float) -> None:
    """Fuse answered 429 (or sent Retry-After) even after the hook's retries: pause every request."""
    asked = getattr(error, "retry_after", None)
    if asked or isinstance(error, FuseRateLimitError):
        pacer.hold(asked or poll_interval, now)


def poll_once(
    hook: FuseHook, call_id: str, log: Log, deadline: float | None = None
) -> CallDetails | FuseError:
    """The call's details, or the transient error that kept them from being read (logged: the wait
    asks again, after what the error asks for)."""
    try:
        return hook.get_call(call_id, deadline=deadline)
    except TRANSIENT_ERRORS as error:
        log.warning("Fuse call %s: status not read, will retry: %s", call_id, error)
        return error


def ended_before_deferring(
    hook: FuseHook, call_id: str, log: Log, deadline: float | None = None
) -> CallDetailsDict | None:
    """One look before handing the wait to the triggerer: the task's result if the call has ended."""
    details = poll_once(hook, call_id, log, deadline)
    return outcome(details) if isinstance(details, CallDetails) and details.is_terminal else None


@dataclass(frozen=True)
class Callbacks:
    """A wait on calls whose ``result_url`` is Airflow's: whose record to read (``ti``, the task
    instance the callbacks name), and until when (Unix time) to rely on it alone, asking Fuse nothing."""

    ti: Any
    until: float

    def relied_on(self, now: float) -> bool:
        return now < self.until

    def pause(self, seconds: float, now: float) -> float:
        """``seconds``, cut so that the first status request is not later than ``until``."""
        return min(seconds, max(0.0, self.until - now)) if self.relied_on(now) else seconds


def reported_message(call_id: str, status: str) -> str:
    return f"Fuse reported call {call_id} {status!r} through its result_url callback (no status request)."


def wait_in_worker(
    task: Any,
    hook: FuseHook,
    call_id: str,
    poll_interval: float,
    deadline: float | None,
    give_up_unknown: float | None = None,
    callbacks: Callbacks | None = None,
) -> CallDetailsDict:
    """Poll in the worker until the call is terminal or the deadline passes (the sync twin of the trigger).

    A call reporting only unknown statuses at ``give_up_unknown`` ends ``unknown`` (:class:`UnknownStatuses`).
    With ``callbacks``, the record of callbacks is read before each status request, and Fuse is asked
    nothing until ``callbacks.until``.
    """
    details: CallDetails | None = None
    last_status = None
    unknown = UnknownStatuses(give_up_unknown, task.log)
    while True:
        if callbacks is not None:
            import asyncio

            from airflow_provider_fuse.callbacks import reported_outcome

            reported = asyncio.run(reported_outcome(callbacks.ti, call_id, task.log))
            if reported is not None:
                task.log.info(reported_message(call_id, reported.status))
                return outcome(reported)
        relying = callbacks is not None and callbacks.relied_on(time.time())
        found = None if relying else poll_once(hook, call_id, task.log, deadline)
        if isinstance(found, CallDetails):
            details = found
            if details.status != last_status:
                task.log.info("Fuse call %s is %r.", call_id, details.status)
                last_status = details.status
            if details.is_terminal:
                return outcome(details)
            strange = unknown.check(call_id, details, time.time())
            if strange is not None and strange.status == UNKNOWN_STATUS:
                return outcome(strange)
        if deadline is not None and time.time() >= deadline:
            raise FuseWaitTimeout(timeout_message(call_id, details, deadline))
        error = found if isinstance(found, FuseError) else None
        pause = pause_before_next_poll(poll_interval, error, deadline)
        time.sleep(callbacks.pause(pause, time.time()) if callbacks is not None else pause)


def first_in_progress(
    hook: FuseHook, call_ids: Sequence[str], max_requests_per_second: float, log: Log
) -> str | None:
    """The first of ``call_ids`` (latest first) that may still ring, or None when every one ended.

    A status that cannot be read counts as in progress; a call Fuse does not know, as ended. Paced
    like a wait (``max_requests_per_second``); it stops at the first call in progress.
    """
    pacer = RequestPacer(max_requests_per_second, time.monotonic())
    for call_id in reversed(call_ids):
        time.sleep(pacer.delay(time.monotonic()))
        try:
            if not hook.get_call(call_id).is_terminal:
                return call_id
        except FuseNotFoundError:
            continue
        except TRANSIENT_ERRORS as error:
            log.warning(
                "Fuse call %s: status not read (%s), so counted as still in progress.", call_id, error
            )
            return call_id
    return None


# --- many calls ------------------------------------------------------------------------------------


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
        log: Log,
        give_up_unknown: float | None = None,
    ):
        self.poll_interval = float(poll_interval)
        self.unknown = UnknownStatuses(give_up_unknown, log)
        self.requests = 0
        self.callbacks = 0  # calls that ended by their result_url callback
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
        while self._ready:
            call_id = heapq.heappop(self._ready)[3]
            if call_id in self._open:  # else a callback ended it while it waited its turn
                return call_id
        return None

    def seconds_to_wait(self, now: float, deadline: float | None) -> float | None:
        """Until the next call is due or the deadline; None when only a poll in flight can wake us."""
        times = [t for t in (self._waiting[0][0] if self._waiting else None, deadline) if t is not None]
        return max(0.0, min(times) - now) if times else None

    def record(self, call_id: str, details: CallDetails, now: float) -> None:
        """A status answer: drop the call if it ended, else schedule its next poll."""
        self.requests += 1
        if call_id not in self._open:  # a callback ended it while this request was in flight
            return
        call = self._calls[call_id]
        news = (details.status, details.attempts) != (call.status, call.attempts)
        call.status, call.attempts = details.status, details.attempts
        call.phone = mask_phone(details.phone_number) if details.phone_number else call.phone
        call.quiet = 0 if news else call.quiet + 1
        strange = self.unknown.check(call_id, details, now)
        if strange is not None and strange.status == UNKNOWN_STATUS:
            call.status = UNKNOWN_STATUS
        if details.is_terminal or call.status == UNKNOWN_STATUS:
            self._open.discard(call_id)
            self._report_progress()
        else:
            self._wait(call_id, now + self._gap(call, details))

    def is_open(self, call_id: str) -> bool:
        """Whether ``call_id`` is tracked here and not known to have ended."""
        return call_id in self._open

    def reported(self, call_id: str, details: CallDetails) -> bool:
        """A result_url callback's terminal details: the call ends without a status request.
        False for a call not tracked here, already ended, or details that are not terminal."""
        if call_id not in self._open or not details.is_terminal:
            return False
        call = self._calls[call_id]
        call.status, call.attempts = details.status, details.attempts
        call.phone = mask_phone(details.phone_number) if details.phone_number else call.phone
        self.callbacks += 1
        self._open.discard(call_id)
        self._report_progress()
        return True

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

    def event(self, deadline: float | None = None, error: FuseError | None = None) -> CallsTriggerEvent:
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
        return {
            "status": status,
            "message": message,
            "calls": calls,
            "requests": self.requests,
            "unknown_statuses": list(self.unknown.seen),
            "callbacks": self.callbacks,
            "untracked_rows": [],
        }

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


def wait_for_calls_in_worker(
    task: Any,
    hook: FuseHook,
    call_ids: Sequence[str],
    poll_interval: float,
    deadline: float | None,
    not_before: Sequence[tuple[float, Sequence[str]]] = (),
    max_requests_per_second: float = 10.0,
    give_up_unknown: float | None = None,
) -> CallsTriggerEvent:
    """Poll many calls in the worker, paced like FuseCallsTrigger; returns the trigger's event."""
    poller = CallsPoller(
        call_ids,
        poll_interval=poll_interval,
        now=time.time(),
        not_before=calls_not_before(not_before),
        log=task.log,
        give_up_unknown=give_up_unknown,
    )
    pacer = RequestPacer(max_requests_per_second, time.monotonic())
    while poller.pending and (deadline is None or time.time() < deadline):
        call_id = poller.next_call(time.time())
        if call_id is None:
            time.sleep(poller.seconds_to_wait(time.time(), deadline) or 0.0)
            continue
        time.sleep(until_deadline(pacer.delay(time.monotonic()), deadline))
        if deadline is not None and time.time() >= deadline:
            break
        try:
            details = hook.get_call(call_id, deadline=deadline)
        except FuseError as error:
            if not poller.ride_out(call_id, error, time.time()):
                return poller.event(deadline, error)
            hold_if_asked(pacer, error, poll_interval, time.monotonic())
        else:
            poller.record(call_id, details, time.time())
    return poller.event(deadline)


def campaign_outcome(
    event: Mapping[str, Any],
    queued: CampaignQueued | Mapping[str, Any],
    min_completed_ratio: float,
    chunks: Sequence[QueuedChunk] | None = None,
) -> tuple[CampaignResult, FuseError | None]:
    """A campaign's result from the wait's event, and the error that fails the task, if any.

    ``chunks``: what was queued, upload by upload (see ``CampaignResult.tracked``).

    The task fails when the wait did not end with every call ended (``timeout``, ``error``) or when
    fewer than ``min_completed_ratio`` of the queued calls completed (the success policy).
    """
    from airflow_provider_fuse.campaign import CampaignResult

    result = CampaignResult.tracked(
        event.get("calls") or [],
        queued,
        event.get("unknown_statuses") or (),
        chunks,
        event.get("untracked_rows") or (),
    )
    error: FuseError | None = None
    if event.get("status") == TIMEOUT:
        error = FuseWaitTimeout(f"{event.get('message')} So far {result.describe()}.")
    elif event.get("status") != DONE:
        error = FuseError(str(event.get("message") or "Waiting for the Fuse campaign failed."))
    elif result.completed_ratio < min_completed_ratio:
        error = FuseCallFailed(
            f"Only {result.describe()}, below min_completed_ratio={min_completed_ratio:g} "
            f"({math.ceil(min_completed_ratio * result.call_count):,} needed)."
        )
    return result, error


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))

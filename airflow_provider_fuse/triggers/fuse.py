"""Triggers that wait for calls in the triggerer, so the task holds no worker slot.

Both poll through ``FuseHook.aget_call`` (aiohttp, one shared session per event loop), ride out
transient errors until their own deadline, and yield one small JSON event: the rules, the events
and the pacing are :mod:`airflow_provider_fuse.waiting`'s, shared with the worker's wait.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import aiohttp  # noqa: F401  (imported here, with the triggers, so the first poll doesn't block the loop on it)
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_fuse import DEFAULT_CONN_ID
from airflow_provider_fuse.callbacks import PHONES_KEY, callbacks_since, reported_outcome
from airflow_provider_fuse.campaign import CallsInXCom, ids_digest, pack_ids, unpack_ids
from airflow_provider_fuse.exceptions import FuseError
from airflow_provider_fuse.models import UNKNOWN_STATUS, CallDetails
from airflow_provider_fuse.waiting import (
    ERROR,
    TIMEOUT,
    TRANSIENT_ERRORS,
    Callbacks,
    CallsPoller,
    RequestPacer,
    UnknownStatuses,
    call_event,
    calls_not_before,
    hold_if_asked,
    pause_before_next_poll,
    reported_message,
    timeout_message,
    until_deadline,
)


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
    :param give_up_unknown: Unix time after which a call reporting only statuses this provider does not
        know ends ``unknown`` (see ``waiting.UnknownStatuses``); None waits for them until the deadline.
    :param callbacks_until: the call's ``result_url`` is Airflow's (``result_url="airflow"``): every
        ``poll_interval`` the trigger reads the callbacks recorded for its task instance first, and
        sends no status request before this Unix time (the dialing window's end plus
        ``callbacks.CALLBACK_GRACE_SECONDS``). None (default): no callbacks, poll as always.
    :param callbacks_ti: ``{"dag_id", "run_id", "task_id", "map_index"}`` of the task instance whose
        callbacks to read where the trigger is not told its own (``airflow dags test`` runs it inline).
    """

    def __init__(
        self,
        call_id: str,
        fuse_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 30.0,
        deadline: float | None = None,
        give_up_unknown: float | None = None,
        callbacks_until: float | None = None,
        callbacks_ti: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        self.call_id = str(call_id)
        self.fuse_conn_id = fuse_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = deadline
        self.give_up_unknown = give_up_unknown
        self.callbacks_until = callbacks_until
        self.callbacks_ti = None if callbacks_ti is None else dict(callbacks_ti)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "call_id": self.call_id,
                "fuse_conn_id": self.fuse_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                **_only_set(
                    give_up_unknown=self.give_up_unknown,
                    callbacks_until=self.callbacks_until,
                    callbacks_ti=self.callbacks_ti,
                ),
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_fuse.hooks.fuse import FuseHook

        hook = FuseHook(self.fuse_conn_id)
        details: CallDetails | None = None
        unknown = UnknownStatuses(self.give_up_unknown, self.log)
        callbacks = self._callbacks()
        try:
            async with hook.hold_session():
                while True:
                    error: FuseError | None = None
                    if callbacks is not None:
                        reported = await reported_outcome(callbacks.ti, self.call_id, self.log)
                        if reported is not None:
                            message = reported_message(self.call_id, reported.status)
                            yield TriggerEvent(call_event(reported.status, self.call_id, reported, message))
                            return
                    if callbacks is None or not callbacks.relied_on(time.time()):  # else: no request yet
                        try:
                            # Retries inside one poll (Retry-After, backoff, slow answers) end at the deadline.
                            details = await hook.aget_call(self.call_id, deadline=self.deadline)
                        except TRANSIENT_ERRORS as err:
                            error = err
                            self.log.warning(
                                "Fuse call %s: status not read, will retry: %s", self.call_id, err
                            )
                        else:
                            if details.is_terminal:
                                message = f"Fuse call {self.call_id} ended {details.status!r}."
                                yield TriggerEvent(call_event(details.status, self.call_id, details, message))
                                return
                            strange = unknown.check(self.call_id, details, time.time())
                            if strange is not None and strange.status == UNKNOWN_STATUS:
                                message = f"Fuse call {self.call_id} ended {UNKNOWN_STATUS!r} (Fuse: {details.status!r})."
                                yield TriggerEvent(call_event(UNKNOWN_STATUS, self.call_id, strange, message))
                                return
                    # +-10% jitter keeps thousands of triggers from polling in lockstep after a stall.
                    interval = self.poll_interval * random.uniform(0.9, 1.1)
                    pause = pause_before_next_poll(interval, error, self.deadline)
                    await asyncio.sleep(callbacks.pause(pause, time.time()) if callbacks else pause)
                    if self.deadline is not None and time.time() >= self.deadline:  # no poll past it
                        message = timeout_message(self.call_id, details, self.deadline)
                        yield TriggerEvent(call_event(TIMEOUT, self.call_id, details, message))
                        return
        except FuseError as err:
            yield TriggerEvent(call_event(ERROR, self.call_id, details, str(err)))

    def _callbacks(self) -> Callbacks | None:
        """Where this wait reads callbacks: its task instance (set by the triggerer before ``run``)."""
        if self.callbacks_until is None:
            return None
        ti = _own_task_instance(self, self.callbacks_ti)
        return None if ti is None else Callbacks(ti, float(self.callbacks_until))

    async def on_kill(self) -> None:
        """Airflow 3.3+: the task was killed by a user. Fuse cannot cancel one call, so nothing is cancelled."""
        _killed(self.log, f"Fuse call {self.call_id}")


class FuseCallsTrigger(BaseTrigger):
    """Poll many Fuse calls until every one has ended or ``deadline`` (Unix seconds) passes.

    One trigger per campaign instead of one per call: a bounded number of requests in flight, a
    ceiling on requests per second (Fuse documents no rate limit and warns against floods), and
    the pacing of :class:`CallsPoller`. A triggerer restart rebuilds it from ``serialize()``; it
    then polls every call again and finishes.

    The calls are given either as ``call_ids`` (kept in the trigger's arguments, packed in runs), or
    as ``call_ids_in_xcom``: the XComs of the task instance that hold them, one per upload
    (:class:`~airflow_provider_fuse.campaign.CallsInXCom`). QueueCallsOperator hands over the
    latter, so the arguments stay a few hundred bytes at any size. The trigger reads those XComs
    once when it starts (one request each to the triggerer's supervisor), through the Task SDK: in
    a triggerer or under ``airflow dags test``. Elsewhere, or when the XComs are gone or changed, it
    ends at once with an ``error`` event saying so.

    :param call_ids: the Fuse call ids; the event lists them in this order.
    :param fuse_conn_id: Airflow connection of type ``fuse``.
    :param poll_interval: seconds between two polls of one call (the shortest gap).
    :param deadline: Unix time after which the wait ends with a ``timeout`` event; None waits forever.
    :param not_before: ``[(unix_time, call_ids), ...]``: calls that may not start before that time
        (a later start_timestamp, calling hours), so not polled before it.
    :param max_concurrency: status requests in flight at once.
    :param max_requests_per_second: the ceiling on status requests per second.
    :param give_up_unknown: Unix time after which calls reporting only statuses this provider does not
        know end ``unknown`` (see ``waiting.UnknownStatuses``).
    :param call_ids_in_xcom: instead of ``call_ids`` and ``not_before``: where the ids are; the event
        lists them upload by upload.
    :param callbacks_until: the calls' ``result_url`` is Airflow's: every ``CALLBACKS_READ_SECONDS``
        (at most ``poll_interval``) the trigger reads the callbacks newly recorded for its task
        instance (one XCom read when none is new), ends the calls they name, and polls no call before
        this Unix time (the dialing window's end plus ``callbacks.CALLBACK_GRACE_SECONDS``).
    """

    def __init__(
        self,
        call_ids: Sequence[str | Sequence[int]] = (),
        fuse_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 60.0,
        deadline: float | None = None,
        not_before: Sequence[Sequence[Any]] | None = None,
        max_concurrency: int = 10,
        max_requests_per_second: float = 10.0,
        give_up_unknown: float | None = None,
        call_ids_in_xcom: CallsInXCom | Mapping[str, Any] | None = None,
        callbacks_until: float | None = None,
    ):
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
        self.give_up_unknown = give_up_unknown
        self.call_ids_in_xcom: CallsInXCom | None = (
            None if call_ids_in_xcom is None else CallsInXCom(**call_ids_in_xcom)  # type: ignore[typeddict-item]
        )
        self.callbacks_until = callbacks_until
        self._phones: Phones = {}  # filled from XCom by run() (see _read_phones)
        self._reported_rows: list[list[Any]] = []

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Where the ids are in XCom, or the ids packed into runs (10,000 consecutive ids cost a few bytes)."""
        calls: dict[str, Any] = (
            {"call_ids_in_xcom": dict(self.call_ids_in_xcom)}
            if self.call_ids_in_xcom is not None
            else {
                "call_ids": pack_ids(self.call_ids),
                "not_before": [[at, pack_ids(ids)] for at, ids in self.not_before] or None,
            }
        )
        settings = {
            "fuse_conn_id": self.fuse_conn_id,
            "poll_interval": self.poll_interval,
            "deadline": self.deadline,
            "max_concurrency": self.max_concurrency,
            "max_requests_per_second": self.max_requests_per_second,
            **_only_set(give_up_unknown=self.give_up_unknown, callbacks_until=self.callbacks_until),
        }
        return f"{type(self).__module__}.{type(self).__qualname__}", {**calls, **settings}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_fuse.hooks.fuse import FuseHook

        try:
            await self._read_calls()
        except FuseError as err:
            yield TriggerEvent(self._poller().event(self.deadline, err))
            return
        hook = FuseHook(self.fuse_conn_id)
        poller = self._poller()
        self.log.info("Tracking %s Fuse calls.", f"{len(self.call_ids):,}")
        try:
            async with hook.hold_session():
                error = await self._track(hook, poller)
        except FuseError as err:  # the connection cannot be read or used
            error = err
        yield TriggerEvent({**poller.event(self.deadline, error), "untracked_rows": self._reported_rows})

    def _poller(self) -> CallsPoller:
        starts = calls_not_before(self.not_before)
        if self.callbacks_until is not None:  # a call is first polled one interval after its start
            first = self.callbacks_until - self.poll_interval
            starts = {call_id: max(starts.get(call_id, first), first) for call_id in self.call_ids}
        return CallsPoller(
            self.call_ids,
            poll_interval=self.poll_interval,
            now=time.time(),
            not_before=starts,
            log=self.log,
            give_up_unknown=self.give_up_unknown,
        )

    async def _read_calls(self) -> None:
        """Fill ``call_ids`` and ``not_before`` from ``call_ids_in_xcom``: one XCom read per upload."""
        where = self.call_ids_in_xcom
        if where is None:
            return
        chunks: list[list[str]] = []
        for index in range(int(where["chunks"])):
            key = where["key"].format(index=index)
            value = await read_xcom(where, key)
            if value is None:
                raise FuseError(_xcom_lost(where, f"XCom {key!r} is missing"))
            chunks.append(unpack_ids(value))
        call_ids = [call_id for chunk in chunks for call_id in chunk]
        if len(call_ids) != int(where["calls"]) or ids_digest(call_ids) != where["digest"]:
            raise FuseError(
                _xcom_lost(where, f"its XComs hold other calls than it deferred with ({len(call_ids):,})")
            )
        self.call_ids = call_ids
        if self.callbacks_until is not None:
            self._phones = await self._read_phones(where, chunks)
        self.not_before = [
            (float(at), [call_id for index in unpack_ids(indexes) for call_id in chunks[int(index)]])
            for at, indexes in where["starts"]
        ]

    async def _read_phones(self, where: CallsInXCom, chunks: list[list[str]]) -> Phones:
        """Which call (its id) or row (an upload answered without ids) each number's digest names:
        one XCom read per upload, from ``callbacks.PHONES_KEY``."""
        phones: Phones = {}
        for index, call_ids in enumerate(chunks):
            value = await read_xcom(where, PHONES_KEY.format(index=index))
            if not isinstance(value, Mapping):  # a campaign queued before the digests were published
                continue
            digests = list(value.get("digests") or ())
            targets: list[str | int] = list(call_ids) or [
                int(row) for row in unpack_ids(value.get("rows") or ())
            ]
            for digest, target in zip(digests, targets, strict=False):
                phones.setdefault(str(digest), []).append(target)
        return phones

    async def _track(self, hook: Any, poller: CallsPoller) -> FuseError | None:
        """Poll until every call ended, the deadline passed, or a permanent error (returned)."""
        pacer = RequestPacer(self.max_requests_per_second, time.monotonic())
        slots = asyncio.Semaphore(self.max_concurrency)
        news = asyncio.Event()
        in_flight: set[asyncio.Task[None]] = set()
        errors: list[FuseError] = []

        async def poll(call_id: str) -> None:
            try:
                details = await hook.aget_call(call_id, deadline=self.deadline)
            except FuseError as err:
                if not poller.ride_out(call_id, err, time.time()):
                    errors.append(err)
                else:
                    hold_if_asked(pacer, err, self.poll_interval, time.monotonic())
            except Exception as err:  # a call left unpolled would keep the wait open forever
                errors.append(FuseError(f"Polling Fuse call {call_id} failed unexpectedly: {err!r}"))
            else:
                poller.record(call_id, details, time.time())
            finally:
                slots.release()
                news.set()

        inbox = self._inbox(poller)
        self._reported_rows = [] if inbox is None else inbox.reported_rows

        def waiting() -> bool:
            return bool(poller.pending) or (inbox is not None and inbox.awaits_rows(time.time()))

        try:
            while waiting() and not errors:
                if inbox is not None:
                    await inbox.take(time.time())
                    if not waiting():
                        break  # the callbacks ended every call
                if not await _acquire_before(slots, self.deadline):
                    break
                call_id = poller.next_call(time.time())
                if call_id is None:
                    slots.release()
                    if not waiting() or errors:  # the last polls ended while we waited for a slot
                        break
                    news.clear()
                    wait = poller.seconds_to_wait(time.time(), self.deadline)
                    await _nap(news, inbox.cap(wait, time.time()) if inbox is not None else wait)
                    continue
                # The rate, or a Retry-After that Fuse asked for: never past the deadline.
                if delay := pacer.delay(time.monotonic()):
                    await asyncio.sleep(until_deadline(delay, self.deadline))
                    if self.deadline is not None and time.time() >= self.deadline:
                        break
                task = asyncio.create_task(poll(call_id))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
        return errors[0] if errors else None

    def _inbox(self, poller: CallsPoller) -> CallbackInbox | None:
        if self.callbacks_until is None:
            return None
        ti = _own_task_instance(self, self.call_ids_in_xcom)
        if ti is None:
            return None
        return CallbackInbox(
            ti,
            poller,
            every=min(self.poll_interval, CALLBACKS_READ_SECONDS),
            until=float(self.callbacks_until),
            phones=self._phones,
            log=self.log,
        )

    async def on_kill(self) -> None:
        """Airflow 3.3+: the task was killed by a user; nothing is cancelled in Fuse."""
        _killed(self.log, f"{len(self.call_ids):,} Fuse calls")


#: How often a campaign's trigger reads the callbacks recorded for it (one XCom read when none is new).
CALLBACKS_READ_SECONDS = 5.0


#: A campaign's numbers by keyed digest: the call ids (or, for uploads Fuse answered without ids, the
#: rows) that number was queued as, in upload order.
Phones = dict[str, list[str | int]]


class CallbackInbox:
    """A campaign's callbacks, read incrementally from its task instance's record.

    A callback ends the call it names, or, naming none, the first call still open that its number
    was queued as (``phones``); a row of an upload answered without ids gets its outcome that way
    only, and is awaited until ``until``. No status request either way.
    """

    def __init__(self, ti: Any, poller: CallsPoller, *, every: float, until: float, phones: Phones, log: Any):
        self.ti = ti
        self.poller = poller
        self.every = every
        self.until = until
        self.phones = phones
        self.rows = {target for targets in phones.values() for target in targets if isinstance(target, int)}
        self.reported_rows: list[list[Any]] = []  # [row, status, attempts], as the event carries them
        self.seen = 0  # entries of the record already read
        self.next_read = float("-inf")
        self.log = log

    def awaits_rows(self, now: float) -> bool:
        """Rows queued without ids still wait for their callback (nothing else can tell their end)."""
        return bool(self.rows) and now < self.until

    async def take(self, now: float) -> None:
        """Read what arrived since the last look, when a read is due."""
        if now < self.next_read:
            return
        self.next_read = now + self.every
        try:
            entries = await callbacks_since(self.ti, self.seen)
        except Exception as error:  # the supervisor or the XCom backend failed: poll on, read later
            self.log.warning("The callbacks record could not be read: %s", error)
            return
        for entry in entries:
            self.seen = max(self.seen, int(entry["seq"]) + 1)
            details = CallDetails.from_dict(entry["details"])
            target = details.call_id or self._match(entry.get("phone_digest"))
            if not details.is_terminal or target is None:
                continue
            if isinstance(target, int):
                self.rows.discard(target)
                self.reported_rows.append([target, details.status, details.attempts])
                self.poller.callbacks += 1
            else:
                self.poller.reported(target, details)

    def _match(self, digest: str | None) -> str | int | None:
        for target in self.phones.get(digest or "", ()):
            if target in self.rows if isinstance(target, int) else self.poller.is_open(target):
                return target
        return None

    def cap(self, seconds: float | None, now: float) -> float:
        """A nap, cut so that the next read is not late."""
        until_read = max(0.0, self.next_read - now)
        return until_read if seconds is None else min(seconds, until_read)


async def read_xcom(where: CallsInXCom, key: str) -> Any:
    """One XCom of the task instance ``where`` names (``task_sdk_xcom.aget_xcom``).

    Raises FuseError where no Task SDK supervisor runs, or when the read fails.
    """
    from airflow_provider_fuse.task_sdk_xcom import aget_xcom, supervisor_running

    if not supervisor_running():
        raise FuseError(
            _xcom_lost(
                where,
                "no Airflow Task SDK supervisor runs here to read XCom (a triggerer or `airflow dags test` has one)",
            )
        )
    try:
        return await aget_xcom(
            key,
            dag_id=where["dag_id"],
            task_id=where["task_id"],
            run_id=where["run_id"],
            map_index=where["map_index"],
        )
    except Exception as err:  # the supervisor or the XCom backend failed: the task decides
        raise FuseError(
            _xcom_lost(where, f"XCom {key!r} could not be read ({type(err).__name__}: {err})")
        ) from err


def _xcom_lost(where: CallsInXCom, why: str) -> str:
    return (
        f"FuseCallsTrigger cannot read the {int(where['calls']):,} call ids of task {where['task_id']!r} "
        f"(run {where['run_id']!r}): {why}. Nothing was cancelled; the calls may still ring. A retry of "
        "the task resumes its calls from the task state store (Airflow 3.3+) and tracks them again."
    )


def _own_task_instance(trigger: BaseTrigger, coordinates: Mapping[str, Any] | None) -> Any:
    """The task instance whose callbacks a trigger reads: the one the triggerer sets before ``run``,
    else the one its arguments name; None (logged: the trigger polls Fuse) without either."""
    ti = getattr(trigger, "task_instance", None)
    if ti is None and coordinates is not None:
        ti = SimpleNamespace(
            **{key: coordinates[key] for key in ("dag_id", "run_id", "task_id", "map_index")}
        )
    if ti is None:
        trigger.log.warning("No task instance to read result_url callbacks of: polling Fuse instead.")
    return ti


def _only_set(**kwargs: Any) -> dict[str, Any]:
    """The arguments that are set: unset, a trigger serializes exactly as release 0.1.0 stored it."""
    return {name: value for name, value in kwargs.items() if value is not None}


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
    if seconds is None:
        await news.wait()
        return
    waiters = {asyncio.ensure_future(news.wait()), asyncio.ensure_future(asyncio.sleep(seconds))}
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)

"""Faults against a live simulator, at hook, operator and trigger level: fast, no Airflow processes.

Every test checks the task's outcome (or the error a user would read) AND the simulator's ledger:
no call is queued twice, and no wait outlives its deadline by more than one poll interval. The
connection uses ``request_timeout=0.5`` and ``retry_limit=3`` so that each fault costs about a second.
Outages begin and end on conditions (a poll seen, a retry under way), never on a timer racing the
client; real-time bounds are generous, and far below what a regression would cost.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_fuse.exceptions import (
    FuseConnectionError,
    FuseError,
    FuseRateLimitError,
    FuseWaitTimeout,
)
from airflow_provider_fuse.hooks import fuse as hook_module
from airflow_provider_fuse.hooks.fuse import FuseHook
from airflow_provider_fuse.models import CallRequest
from airflow_provider_fuse.operators.fuse import QueueCallOperator
from airflow_provider_fuse.resume import CALL_ID_KEY, QUEUE_SENT_KEY
from airflow_provider_fuse.sensors.fuse import FuseCallSensor
from airflow_provider_fuse.testing import FuseSimulator
from airflow_provider_fuse.triggers.fuse import FuseCallTrigger
from airflow_provider_fuse.waiting import wait_in_worker
from tests import figures
from tests.conftest import HANG, within
from tests.stack.conftest import RETRY_LIMIT, connection
from tests.support import FakeStore as Store
from tests.support import FakeTI as TI

NUMBER = "+16175550140"
#: Slack for scheduling noise on a busy 2-core machine, on top of one poll interval (a quiet machine
#: needs under 0.1 s), yet far below what a wait that ignored its deadline inside one poll would
#: overshoot by under DEADLINE_FAULTS: a Retry-After, or a slow answer's read timeout, of FAULT_SECONDS.
SLACK = 5.0
FAULT_SECONDS = 30.0


class Task:
    log = logging.getLogger("tests.stack.faults")


def a_try(store: Store, **kwargs: Any) -> dict[str, Any]:
    """One try of a QueueCallOperator task: a fresh operator, the task instance's store."""
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("timeout", 20)
    op = QueueCallOperator(task_id="call", application_id=1, deployment_id=2, phone_number=NUMBER, **kwargs)
    return op.execute({"ti": TI(), "task_state_store": store})  # type: ignore[arg-type]


def pending_start(sim: FuseSimulator, real_seconds: float) -> int:
    """A start_timestamp that keeps a call queued for ``real_seconds`` of real time."""
    return int(sim.now() + real_seconds * 600) + 1


def gaps(entries: list[Any]) -> list[float]:
    return [b.time - a.time for a, b in itertools.pairwise(entries)]


def when(condition: Callable[[], bool], action: Callable[[], Any], seconds: float = 60) -> threading.Thread:
    """Run ``action`` in a thread as soon as ``condition`` holds (checked every 10 ms, for ``seconds``)."""

    def watch() -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                return  # the test's own assertions then say what never happened
            time.sleep(0.01)
        action()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


# --- queue faults ------------------------------------------------------------------------------


def test_a_429_storm_is_ridden_out_honouring_retry_after(live: FuseSimulator) -> None:
    live.faults.inject("queue", "429", count=3, retry_after=0.3)
    result = a_try(Store())
    assert result["status"] == "completed"
    entries = live.requests("queue")
    assert [(e.status, e.fault) for e in entries] == [(429, "429")] * 3 + [(200, None)]
    assert min(gaps(entries)) >= 0.28, "Retry-After (0.3 s) must be honoured, not the 0.05 s backoff"
    figures.check_calls(live.ledger)
    figures.fault("queue 429 storm (Retry-After)")


def test_a_429_storm_longer_than_the_retry_limit_fails_clearly_and_the_retry_queues_once(
    live: FuseSimulator,
) -> None:
    live.faults.inject("queue", "429", count=RETRY_LIMIT + 1, retry_after=0.05)
    store = Store()
    with pytest.raises(FuseRateLimitError, match="HTTP 429") as info:
        a_try(store)
    assert info.value.call_may_be_queued is False
    assert store.data == {}, "a refused request queued nothing: the retry may queue"
    assert len(live.requests("queue")) == RETRY_LIMIT + 1
    assert a_try(store)["status"] == "completed"
    figures.check_calls(live.ledger)
    figures.fault("queue 429 storm beyond retry_limit")


@pytest.mark.parametrize(
    ("kind", "options", "queued"),
    [
        ("500", {}, 0),
        ("503", {"retry_after": 0.1}, 0),
        ("drop", {}, 1),
        ("slow", {"delay": 600.0}, 1),  # answered only when the simulator stops
        ("malformed", {}, 1),
    ],
)
def test_an_ambiguous_queue_answer_fails_clearly_and_the_retry_never_redials(
    live: FuseSimulator, kind: str, options: dict[str, Any], queued: int
) -> None:
    """Fuse has no idempotency key: after an answer that may hide a queued call, never send again."""
    live.faults.inject("queue", kind, count=1, **options)
    store = Store()
    with pytest.raises(FuseError) as first:
        a_try(store)
    assert first.value.call_may_be_queued is True
    assert "may have been queued" in str(first.value) or "probably queued" in str(first.value), (
        f"the error must tell the user the call may be queued: {first.value}"
    )
    assert QUEUE_SENT_KEY in store.data and CALL_ID_KEY not in store.data
    with pytest.raises(FuseError, match=r"sent a queue request .* may be queued or placed already"):
        a_try(store)
    (entry,) = live.requests("queue")
    assert entry.fault == kind and entry.processed is bool(queued)
    assert figures.check_calls(live.ledger) == queued
    figures.fault(f"queue {kind}")


def test_redial_on_retry_after_an_ambiguous_answer_is_the_one_way_to_ring_twice(live: FuseSimulator) -> None:
    """The documented exception: ``redial_on_retry=True`` re-queues after a dropped answer."""
    live.faults.inject("queue", "drop", count=1)
    store = Store()
    with pytest.raises(FuseConnectionError):
        a_try(store, redial_on_retry=True)
    assert a_try(store, redial_on_retry=True)["status"] == "completed"
    assert figures.queue_requests_processed(live.ledger) == 2


def test_queueing_while_fuse_is_unreachable_retries_until_it_is_back(
    live: FuseSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[int] = []

    def hook_wait(error: BaseException | None, attempt: int, backoff: float) -> float:
        """Fuse comes back during the hook's second wait between tries, whatever the machine's speed."""
        waits.append(attempt)
        if len(waits) == 2:
            live.start()
        return 0.0

    monkeypatch.setattr(hook_module, "backoff_seconds", hook_wait)
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection(live, retry_limit=8))
    live.stop()
    assert a_try(Store())["status"] == "completed"
    assert waits == [1, 2], "two tries were refused while Fuse was down, the third went through"
    (entry,) = live.requests("queue")
    assert entry.processed  # the only request that reached Fuse is the one after the outage
    figures.check_calls(live.ledger)
    figures.fault("queue while unreachable (back within the retries)")


def test_queueing_while_fuse_stays_unreachable_fails_clearly_and_the_retry_may_queue(
    live: FuseSimulator,
) -> None:
    live.stop()
    store = Store()
    with pytest.raises(FuseConnectionError, match="could not connect") as info:
        a_try(store)
    assert info.value.call_may_be_queued is False and store.data == {}
    live.start()
    assert a_try(store)["status"] == "completed"
    figures.check_calls(live.ledger)
    figures.fault("queue while unreachable (beyond the retries)")


# --- status faults while waiting, in the worker and in the trigger --------------------------------


def bound(deadline: float) -> float:
    """How long a trigger may run in these tests: until its deadline, plus HANG for a busy machine."""
    return max(0.0, deadline - time.time()) + HANG


def wait(
    mode: str, sim: FuseSimulator, call_id: str, poll_interval: float, deadline: float
) -> dict[str, Any]:
    """Wait for a call the way the operator does: polling in the worker, or in the trigger."""
    if mode == "worker":
        try:
            return wait_in_worker(Task(), FuseHook(), call_id, poll_interval, deadline)  # type: ignore[arg-type]
        except FuseWaitTimeout as error:
            return {"status": "timeout", "message": str(error)}

    async def run() -> list[dict[str, Any]]:
        trigger = FuseCallTrigger(call_id, poll_interval=poll_interval, deadline=deadline)
        return [event.payload async for event in trigger.run()]

    (event,) = asyncio.run(within(bound(deadline), run(), "FuseCallTrigger"))
    return {**(event["call_details"] or {}), "status": event["status"], "message": event["message"]}


WAIT_FAULTS = [
    ("429", {"count": 3, "retry_after": 0.2}),
    ("500", {"count": 6}),
    ("503", {"count": 6}),
    ("drop", {"count": 4}),
    ("slow", {"count": 3, "delay": 2.0}),
    ("malformed", {"count": 4}),
]


@pytest.mark.parametrize("mode", ["worker", "trigger"])
@pytest.mark.parametrize(("kind", "options"), WAIT_FAULTS, ids=[k for k, _ in WAIT_FAULTS])
def test_status_faults_are_ridden_out(
    live: FuseSimulator, mode: str, kind: str, options: dict[str, Any]
) -> None:
    call_id = FuseHook().queue_call(1, 2, CallRequest(NUMBER))
    live.faults.inject("status", kind, **options)
    details = wait(mode, live, call_id, 0.05, time.time() + 30)
    assert details["status"] == "completed" and details["call_id"] == call_id
    faulted = [e for e in live.requests("status") if e.fault == kind]
    assert len(faulted) == options["count"], "every injected fault was met, and ridden out"
    figures.check_calls(live.ledger)
    figures.fault(f"status {kind} ({mode})")


@pytest.mark.parametrize("kind", ["503", "drop", "malformed"])
def test_a_status_fault_right_after_queueing_still_defers(live: FuseSimulator, kind: str) -> None:
    """The check before deferring must ride out a transient status error, as every later poll does."""
    live.faults.inject("status", kind, count=RETRY_LIMIT + 1)
    store = Store()
    with pytest.raises(TaskDeferred) as deferred:
        a_try(store, deferrable=True)
    assert isinstance(deferred.value.trigger, FuseCallTrigger)
    assert store.data.get(CALL_ID_KEY) == deferred.value.trigger.call_id
    figures.check_calls(live.ledger)
    figures.fault(f"status {kind} right after queueing (deferrable operator)")


@pytest.mark.parametrize("kind", ["503", "drop"])
def test_the_deferrable_sensor_rides_out_a_status_fault_before_deferring(
    live: FuseSimulator, kind: str
) -> None:
    call_id = FuseHook().queue_call(1, 2, CallRequest(NUMBER, start_timestamp=pending_start(live, 60)))
    live.faults.inject("status", kind, count=RETRY_LIMIT + 1)
    sensor = FuseCallSensor(task_id="wait", call_id=call_id, deferrable=True, poke_interval=1, timeout=30)
    with pytest.raises(TaskDeferred):
        sensor.execute({})  # type: ignore[arg-type]
    figures.check_calls(live.ledger)
    figures.fault(f"status {kind} before the sensor defers")


@pytest.mark.parametrize("mode", ["worker", "trigger"])
def test_status_lagging_behind_the_call_still_reports_how_it_ended(live: FuseSimulator, mode: str) -> None:
    """The call ends while its status cannot be read (Fuse's FAQ: status updates can lag)."""
    call_id = FuseHook().queue_call(1, 2, CallRequest(NUMBER))
    live.faults.inject("status", "503", fraction=1.0)
    lag = when(lambda: live.status(call_id) == "completed", live.faults.clear)
    details = wait(mode, live, call_id, 0.1, time.time() + 60)
    lag.join()
    assert any(e.fault == "503" for e in live.requests("status")), "the status was unreadable at first"
    assert live.status(call_id) == "completed"
    assert details["status"] == "completed"
    assert [e["event"] for e in details["events"]][-1] == "disconnected"
    figures.check_calls(live.ledger)
    figures.fault(f"status lagging ({mode})")


@pytest.mark.parametrize("mode", ["worker", "trigger"])
def test_fuse_unreachable_mid_wait_is_ridden_out(live: FuseSimulator, mode: str) -> None:
    start = pending_start(live, 3600)  # pending until the simulated clock is moved past it
    call_id = FuseHook().queue_call(1, 2, CallRequest(NUMBER, start_timestamp=start))
    outage: dict[str, int] = {}

    def outage_then_the_call_ends() -> None:
        """Down for a second after the first poll, then back; only then may the call ring and end."""
        outage["polls_before"] = len(live.requests("status"))
        live.stop()
        time.sleep(1.0)
        live.start()
        live.advance(start - live.now() + 1)

    outage_thread = when(lambda: len(live.requests("status")) >= 1, outage_then_the_call_ends)
    details = wait(mode, live, call_id, 0.1, time.time() + 60)
    outage_thread.join()
    assert details["status"] == "completed"
    polls = live.requests("status")
    assert len(polls) > outage["polls_before"] >= 1, "polled before the outage and again after it"
    figures.check_calls(live.ledger)
    figures.fault(f"unreachable mid-wait ({mode})")


DEADLINE_FAULTS: list[tuple[str, Callable[[FuseSimulator], None]]] = [
    ("none", lambda sim: None),
    ("slow", lambda sim: sim.faults.inject("status", "slow", fraction=1.0, delay=3600)),
    ("429", lambda sim: sim.faults.inject("status", "429", fraction=1.0, retry_after=FAULT_SECONDS)),
    ("503", lambda sim: sim.faults.inject("status", "503", fraction=1.0, retry_after=FAULT_SECONDS)),
    ("drop", lambda sim: sim.faults.inject("status", "drop", fraction=1.0)),
    ("unreachable", lambda sim: sim.stop()),
]
#: A wait that ignores its deadline in the worker fails on this limit instead of hanging the suite.
DEADLINE_TEST_LIMIT = pytest.mark.timeout(90)


@DEADLINE_TEST_LIMIT
@pytest.mark.parametrize("mode", ["worker", "trigger"])
@pytest.mark.parametrize(("kind", "fault"), DEADLINE_FAULTS, ids=[k for k, _ in DEADLINE_FAULTS])
def test_no_wait_outlives_its_deadline_by_more_than_one_poll_interval(
    live: FuseSimulator,
    mode: str,
    kind: str,
    fault: Callable[[FuseSimulator], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    poll_interval, timeout = 0.3, 1.0
    call_id = FuseHook().queue_call(1, 2, CallRequest(NUMBER, start_timestamp=pending_start(live, 3600)))
    # Reads may take FAULT_SECONDS: only the deadline can cut a slow answer short.
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection(live, request_timeout=FAULT_SECONDS))
    fault(live)
    deadline = time.time() + timeout
    outcome = wait(mode, live, call_id, poll_interval, deadline)
    overshoot = time.time() - deadline
    figures.deadline(f"{kind} ({mode})", overshoot, poll_interval)
    assert outcome["status"] == "timeout" and "NOT cancelled" in outcome["message"]
    assert overshoot <= poll_interval + SLACK, (
        f"the wait ended {overshoot:.2f} s after its deadline (poll interval {poll_interval} s)"
    )
    figures.check_calls(live.ledger)
    figures.fault(f"deadline under {kind} ({mode})")


# --- campaigns: many calls tracked at once ------------------------------------------------------

CAMPAIGN_NUMBERS = ("+16175550141", "+16175550142", "+16175550143")


def wait_many(mode: str, call_ids: list[str], poll_interval: float, deadline: float) -> dict[str, Any]:
    """Wait for many calls the way QueueCallsOperator does: in the worker, or in FuseCallsTrigger."""
    from airflow_provider_fuse.triggers.fuse import FuseCallsTrigger
    from airflow_provider_fuse.waiting import wait_for_calls_in_worker

    if mode == "worker":
        return wait_for_calls_in_worker(Task(), FuseHook(), call_ids, poll_interval, deadline)  # type: ignore[arg-type]

    async def run() -> list[dict[str, Any]]:
        trigger = FuseCallsTrigger(call_ids, "fuse_default", poll_interval, deadline)
        return [event.payload async for event in trigger.run()]

    (event,) = asyncio.run(within(bound(deadline), run(), "FuseCallsTrigger"))
    return event


@DEADLINE_TEST_LIMIT
@pytest.mark.parametrize("mode", ["worker", "trigger"])
@pytest.mark.parametrize(("kind", "fault"), DEADLINE_FAULTS, ids=[k for k, _ in DEADLINE_FAULTS])
def test_no_campaign_wait_outlives_its_deadline_by_more_than_one_poll_interval(
    live: FuseSimulator,
    mode: str,
    kind: str,
    fault: Callable[[FuseSimulator], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    poll_interval, timeout = 0.3, 1.0
    start = pending_start(live, 3600)
    requests = [CallRequest(number, start_timestamp=start) for number in CAMPAIGN_NUMBERS]
    call_ids = FuseHook().queue_calls(1, 2, requests)
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection(live, request_timeout=FAULT_SECONDS))
    fault(live)
    deadline = time.time() + timeout
    event = wait_many(mode, call_ids, poll_interval, deadline)
    overshoot = time.time() - deadline
    figures.deadline(f"campaign {kind} ({mode})", overshoot, poll_interval)
    assert event["status"] == "timeout" and "NOT cancelled" in event["message"]
    assert overshoot <= poll_interval + SLACK, (
        f"the campaign's wait ended {overshoot:.2f} s after its deadline (poll interval {poll_interval} s)"
    )
    figures.check_campaign_rows(live.ledger)
    figures.fault(f"campaign deadline under {kind} ({mode})")


@pytest.mark.parametrize(("count", "concurrency"), [(1, 10), (6, 10), (2, 1), (6, 2)])
def test_a_campaign_trigger_ends_as_soon_as_every_call_has_ended(
    live: FuseSimulator, count: int, concurrency: int
) -> None:
    """No deadline: the trigger must notice the last call ending, not sleep until a deadline (or forever).

    Seen in the multi-process suite: six calls ended within a second, the event came at the deadline
    two minutes later. With fewer slots than calls it is deterministic: waiting for a free slot lets
    the last polls finish, and their wake-up is cleared before the trigger naps.
    """
    from airflow_provider_fuse.triggers.fuse import FuseCallsTrigger

    numbers = [f"+1617555{n:04d}" for n in range(160, 160 + count)]
    call_ids = FuseHook().queue_calls(1, 2, [CallRequest(number) for number in numbers])
    deadline = time.monotonic() + 10
    while any(live.status(call_id) != "completed" for call_id in call_ids):  # each first poll ends one
        assert time.monotonic() < deadline, "the simulator never completed the calls"
        time.sleep(0.05)

    async def run() -> list[dict[str, Any]]:
        trigger = FuseCallsTrigger(call_ids, "fuse_default", 0.2, None, max_concurrency=concurrency)
        return [event.payload async for event in trigger.run()]

    # Polls 0.2 s apart, no deadline: a trigger that misses the last call ending never stops.
    (event,) = asyncio.run(within(HANG, run(), f"FuseCallsTrigger, after its {count} calls had ended,"))
    assert event["status"] == "done"
    figures.check_campaign_rows(live.ledger)

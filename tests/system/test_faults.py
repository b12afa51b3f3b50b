"""Faults against a live simulator, at hook, operator and trigger level: fast, no Airflow processes.

Every test checks the task's outcome (or the error a user would read) AND the simulator's ledger:
no call is queued twice, and no wait outlives its deadline by more than one poll interval. The
connection uses ``request_timeout=0.5`` and ``retry_limit=3`` so that each fault costs about a second.
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
from airflow_provider_fuse.operators.fuse import (
    CALL_ID_KEY,
    QUEUE_SENT_KEY,
    QueueCallOperator,
    wait_in_worker,
)
from airflow_provider_fuse.sensors.fuse import FuseCallSensor
from airflow_provider_fuse.testing import FuseSimulator
from airflow_provider_fuse.triggers.fuse import FuseCallTrigger
from tests.system import figures
from tests.system.conftest import REQUEST_TIMEOUT, RETRY_LIMIT, connection

NUMBER = "+16175550140"
#: Slack for scheduling noise on a busy 2-core machine, on top of one poll interval.
SLACK = 0.35


class Store:
    """Airflow 3.3's task state store, in memory: shared by the tries of one task instance."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any, **kwargs: Any) -> None:
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


class TI:
    def xcom_push(self, key: str, value: Any) -> None:
        pass


class Task:
    log = logging.getLogger("tests.system.faults")


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
        ("slow", {"delay": 3.0}, 1),
        ("malformed", {}, 1),
    ],
)
def test_an_ambiguous_queue_answer_fails_clearly_and_the_retry_never_redials(
    live: FuseSimulator, kind: str, options: dict[str, Any], queued: int
) -> None:
    """Fuse has no idempotency key: after an answer that may hide a queued call, never send again."""
    live.faults.inject("queue", kind, count=1, **options)
    store = Store()
    started = time.monotonic()
    with pytest.raises(FuseError) as first:
        a_try(store)
    assert time.monotonic() - started < REQUEST_TIMEOUT + 1.0, "an ambiguous queue request is not retried"
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
    monkeypatch.setattr(hook_module, "backoff_seconds", lambda *args, **kwargs: 0.25)
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection(live, retry_limit=8))
    live.stop()
    threading.Timer(0.6, live.start).start()
    started = time.monotonic()
    assert a_try(Store())["status"] == "completed"
    assert time.monotonic() - started >= 0.6
    (entry,) = live.requests("queue")
    assert entry.processed and entry.time - started > 0  # the only request is the one after the outage
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

    (event,) = asyncio.run(run())
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
    lag = threading.Timer(1.5, live.faults.clear)
    lag.start()
    started = time.monotonic()
    details = wait(mode, live, call_id, 0.1, time.time() + 30)
    lag.join()
    assert time.monotonic() - started >= 1.5
    assert live.status(call_id) == "completed"
    assert details["status"] == "completed"
    assert [e["event"] for e in details["events"]][-1] == "disconnected"
    figures.check_calls(live.ledger)
    figures.fault(f"status lagging ({mode})")


@pytest.mark.parametrize("mode", ["worker", "trigger"])
def test_fuse_unreachable_mid_wait_is_ridden_out(live: FuseSimulator, mode: str) -> None:
    call_id = FuseHook().queue_call(1, 2, CallRequest(NUMBER, start_timestamp=pending_start(live, 1.5)))
    threading.Timer(0.3, live.stop).start()
    restart = threading.Timer(1.3, live.start)
    restart.start()
    details = wait(mode, live, call_id, 0.1, time.time() + 30)
    restart.join()
    assert details["status"] == "completed"
    polls = live.requests("status")
    assert max(gaps(polls)) >= 0.9, "the wait went on through the outage"
    figures.check_calls(live.ledger)
    figures.fault(f"unreachable mid-wait ({mode})")


DEADLINE_FAULTS: list[tuple[str, Callable[[FuseSimulator], None]]] = [
    ("none", lambda sim: None),
    ("slow", lambda sim: sim.faults.inject("status", "slow", fraction=1.0, delay=5.0)),
    ("429", lambda sim: sim.faults.inject("status", "429", fraction=1.0, retry_after=5)),
    ("503", lambda sim: sim.faults.inject("status", "503", fraction=1.0, retry_after=5)),
    ("drop", lambda sim: sim.faults.inject("status", "drop", fraction=1.0)),
    ("unreachable", lambda sim: sim.stop()),
]


@pytest.mark.parametrize("mode", ["worker", "trigger"])
@pytest.mark.parametrize(("kind", "fault"), DEADLINE_FAULTS, ids=[k for k, _ in DEADLINE_FAULTS])
def test_no_wait_outlives_its_deadline_by_more_than_one_poll_interval(
    live: FuseSimulator, mode: str, kind: str, fault: Callable[[FuseSimulator], None]
) -> None:
    poll_interval, timeout = 0.3, 1.0
    call_id = FuseHook().queue_call(1, 2, CallRequest(NUMBER, start_timestamp=pending_start(live, 3600)))
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
    from airflow_provider_fuse.operators.fuse import wait_for_calls_in_worker
    from airflow_provider_fuse.triggers.fuse import FuseCallsTrigger

    if mode == "worker":
        return wait_for_calls_in_worker(Task(), FuseHook(), call_ids, poll_interval, deadline)  # type: ignore[arg-type]

    async def run() -> list[dict[str, Any]]:
        trigger = FuseCallsTrigger(call_ids, "fuse_default", poll_interval, deadline)
        return [event.payload async for event in trigger.run()]

    (event,) = asyncio.run(run())
    return event


@pytest.mark.parametrize("mode", ["worker", "trigger"])
@pytest.mark.parametrize(("kind", "fault"), DEADLINE_FAULTS, ids=[k for k, _ in DEADLINE_FAULTS])
def test_no_campaign_wait_outlives_its_deadline_by_more_than_one_poll_interval(
    live: FuseSimulator, mode: str, kind: str, fault: Callable[[FuseSimulator], None]
) -> None:
    poll_interval, timeout = 0.3, 1.0
    start = pending_start(live, 3600)
    requests = [CallRequest(number, start_timestamp=start) for number in CAMPAIGN_NUMBERS]
    call_ids = FuseHook().queue_calls(1, 2, requests)
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

    async def bounded() -> list[dict[str, Any]]:
        return await asyncio.wait_for(run(), timeout=15)

    started = time.monotonic()
    try:
        (event,) = asyncio.run(bounded())
    except TimeoutError:
        pytest.fail(f"{count} calls ended within a second, but the trigger was still waiting after 15 s")
    assert event["status"] == "done" and time.monotonic() - started < 5
    figures.check_campaign_rows(live.ledger)

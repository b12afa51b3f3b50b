"""FuseCallsTrigger: its pacing (pure), then whole runs against the simulator under a real event loop."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest
import requests

from airflow_provider_fuse.exceptions import FuseAuthError, FuseServerError
from airflow_provider_fuse.hooks import fuse as hook_module
from airflow_provider_fuse.hooks.fuse import FuseHook
from airflow_provider_fuse.models import CallDetails, CallRequest
from airflow_provider_fuse.testing import FuseSimulator
from airflow_provider_fuse.triggers.fuse import FuseCallsTrigger
from airflow_provider_fuse.waiting import MAX_BACKOFF_POLLS, CallsPoller, RequestPacer
from tests.conftest import HANG, within

LOG = logging.getLogger("test")


def details(call_id: str, status: str, attempts: int = 1, **kwargs: Any) -> CallDetails:
    return CallDetails(call_id, status, phone_number="'16175550101'", attempts=attempts, **kwargs)


def poller(call_ids: list[str], now: float = 1000.0, **kwargs: Any) -> CallsPoller:
    return CallsPoller(call_ids, poll_interval=10, now=now, log=LOG, **kwargs)


# --- pacing, without I/O -----------------------------------------------------------------------


def test_serialize_round_trips_with_ids_packed_into_runs() -> None:
    ids = [str(n) for n in range(5000, 15000)]
    trigger = FuseCallsTrigger(ids, "my_fuse", 30, 1_800_000_000.0, [(1_790_000_000, ids[:10])], 4, 2.5)
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_fuse.triggers.fuse.FuseCallsTrigger"
    assert kwargs == {
        "call_ids": [[5000, 10_000]],
        "fuse_conn_id": "my_fuse",
        "poll_interval": 30.0,
        "deadline": 1_800_000_000.0,
        "not_before": [[1_790_000_000.0, [[5000, 10]]]],
        "max_concurrency": 4,
        "max_requests_per_second": 2.5,
    }
    rebuilt = FuseCallsTrigger(**kwargs)
    assert rebuilt.call_ids == ids and rebuilt.serialize() == (path, kwargs)
    assert len(json.dumps(kwargs)) < 300
    with pytest.raises(ValueError, match="max_requests_per_second"):
        FuseCallsTrigger(ids, max_requests_per_second=0)


def test_the_pacer_allows_a_one_second_burst_then_spaces_requests_at_the_rate() -> None:
    pacer = RequestPacer(10, now=0.0)
    assert [pacer.delay(0.0) for _ in range(10)] == [0.0] * 10
    assert pacer.delay(0.0) == pytest.approx(0.1)
    assert pacer.delay(0.0) == pytest.approx(0.2)
    assert pacer.delay(5.0) == 0.0  # refilled, up to one second's worth
    pacer.hold(3.0, now=5.0)
    assert pacer.delay(5.0) == pytest.approx(3.1)


def test_a_call_is_first_polled_one_interval_after_its_start_never_before() -> None:
    calls = poller(["1", "2"], not_before={"2": 2000.0})
    assert calls.next_call(1009.9) is None and calls.seconds_to_wait(1000.0, None) == 10.0
    assert calls.next_call(1010.0) == "1"
    assert calls.next_call(2009.0) is None
    assert calls.seconds_to_wait(1990.0, deadline=1995.0) == 5.0
    assert calls.next_call(2010.0) == "2"


def test_the_next_poll_follows_the_call_between_attempts_and_backs_off_before_dialing() -> None:
    calls = poller(["1"])

    def gap(status: str, attempts: int, **kwargs: Any) -> float:
        call_id = calls.next_call(float("inf"))
        assert call_id == "1"
        calls.record(call_id, details(call_id, status, attempts, **kwargs), now=0.0)
        return calls.seconds_to_wait(0.0, None) or 0.0

    assert gap("queued", 0) == 10  # not dialed yet
    assert gap("queued", 0) == 20  # still not: twice as long
    assert gap("queued", 0) == 40
    assert gap("dialing", 1) == 10  # news: back to the interval
    assert gap("queued", 1, reattempt_wait=30) == 30  # between attempts: after reattempt_wait
    assert gap("queued", 1, reattempt_wait=3600) == MAX_BACKOFF_POLLS * 10  # but never later than this
    assert gap("connected", 2) == 10
    assert calls.next_call(float("inf")) == "1"
    calls.record("1", details("1", "completed", 2), now=0.0)
    assert calls.pending == 0 and calls.next_call(float("inf")) is None  # ended: dropped


def test_when_many_calls_are_due_the_likely_finished_go_first() -> None:
    calls = poller(["queued", "between", "dialing", "connected"])
    for call_id, status, attempts in [
        ("queued", "queued", 0),
        ("between", "queued", 1),
        ("dialing", "dialing", 1),
        ("connected", "connected", 1),
    ]:
        assert calls.next_call(1010.0) == call_id  # first round: in order given
        calls.record(call_id, details(call_id, status, attempts, reattempt_wait=10), now=1010.0)
    assert [calls.next_call(9999.0) for _ in range(4)] == ["connected", "dialing", "between", "queued"]


def test_transient_errors_are_ridden_out_and_permanent_ones_are_not() -> None:
    calls = poller(["1"])
    assert calls.next_call(1010.0) == "1"
    assert calls.ride_out("1", FuseServerError("HTTP 503"), now=1010.0) is True
    assert calls.next_call(1019.0) is None and calls.next_call(1020.0) == "1"
    assert calls.ride_out("1", FuseAuthError("HTTP 401"), now=1020.0) is False


def test_the_event_of_ten_thousand_calls_is_small_and_in_the_order_given() -> None:
    ids = [str(n) for n in range(1_000_000, 1_010_000)]
    calls = poller(ids)
    for call_id in ids:
        assert calls.next_call(2000.0) == call_id
        calls.record(call_id, details(call_id, "completed", 3), now=2000.0)
    event = calls.event()
    assert event["status"] == "done" and event["requests"] == 10_000
    assert event["calls"][0] == ["1000000", "completed", 3, "16***101"]
    assert [c[0] for c in event["calls"]] == ids
    assert event["message"] == "All 10,000 Fuse calls ended: completed 10,000."
    assert len(json.dumps(event)) < 500_000


def test_a_timeout_event_names_the_calls_still_open_and_cancels_nothing() -> None:
    calls = poller(["1", "2", "3"])
    for call_id, status in (("1", "completed"), ("2", "dialing")):
        assert calls.next_call(1010.0) == call_id
        calls.record(call_id, details(call_id, status), now=1010.0)
    event = calls.event(deadline=1_800_000_000.0)
    assert event["status"] == "timeout"
    assert event["message"].startswith("2 of 3 Fuse calls had not ended at the deadline (2027-01-15")
    assert "dialing 1" in event["message"] and "not read 1" in event["message"]
    assert "completed" not in event["message"] and "NOT cancelled" in event["message"]
    assert event["calls"][2] == ["3", None, None, None]


# --- whole runs against the simulator -------------------------------------------------------------


def queue(sim: FuseSimulator, outcomes: dict[str, str], **options: Any) -> list[str]:
    """Queue one bulk upload whose callees behave as scripted; returns the call ids in order."""
    for number, outcome in outcomes.items():
        sim.script(number, outcome)
    requests = [CallRequest(number, **options) for number in outcomes]
    return FuseHook().queue_calls(1, 2, requests)


async def run(trigger: FuseCallsTrigger, seconds: float = 120) -> dict[str, Any]:
    """The trigger's one event; a run still going after ``seconds`` fails the test instead of hanging it."""

    async def events() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    (event,) = await within(seconds, events(), "FuseCallsTrigger")
    return event


async def test_calls_ending_at_different_times_and_later_are_each_polled_until_they_end(
    sim: FuseSimulator,
) -> None:
    now = queue(
        sim,
        {
            "+16175550101": "answer",
            "+16175550102": "busy:1",  # answered on the second attempt
            "+16175550103": "reject",
            "+16175550104": "never",
        },
        max_attempts=2,
        reattempt_wait=60,
    )
    # Scheduled 600 simulated seconds ahead: one real second at 600x.
    later_start = time.time() + 1.0
    later = queue(
        sim,
        {"+16175550105": "answer", "+16175550106": "busy:1"},
        start_timestamp=int(sim.now()) + 600,
        max_attempts=2,
        reattempt_wait=60,
    )
    trigger = FuseCallsTrigger(
        now + later, poll_interval=0.05, deadline=time.time() + 60, not_before=[(later_start, later)]
    )
    event = await run(trigger)

    assert event["status"] == "done"
    assert [(c[0], c[1], c[2]) for c in event["calls"]] == [
        (now[0], "completed", 1),
        (now[1], "completed", 2),
        (now[2], "rejected", 1),
        (now[3], "failed", 2),
        (later[0], "completed", 1),
        (later[1], "completed", 2),
    ]
    polls = sim.requests("status")
    assert event["requests"] == len(polls)
    assert all(p.time >= later_start for p in polls if p.call_ids[0] in later)
    assert len(polls) <= 4 * len(event["calls"])


async def test_transient_errors_are_ridden_out_until_every_call_ends(sim: FuseSimulator) -> None:
    ids = queue(sim, {"+16175550101": "answer", "+16175550102": "answer"})
    sim.faults.inject("status", "503", count=3)
    sim.faults.inject("status", "429", count=2, retry_after=0)
    sim.faults.inject("status", "malformed", count=1)
    event = await run(FuseCallsTrigger(ids, poll_interval=0.05, deadline=time.time() + 60))
    assert event["status"] == "done" and [c[1] for c in event["calls"]] == ["completed", "completed"]


async def test_a_permanent_error_ends_the_wait_with_an_error_event(sim: FuseSimulator) -> None:
    ids = queue(sim, {"+16175550101": "answer"})
    event = await run(FuseCallsTrigger([*ids, "999"], poll_interval=0.05, deadline=time.time() + 60))
    assert event["status"] == "error" and "call not found" in event["message"]
    assert len(event["calls"]) == 2


async def test_an_unexpected_failure_ends_the_wait_instead_of_hanging(
    sim: FuseSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = queue(sim, {"+16175550101": "answer"})

    async def broken(self: Any, call_id: str, **kwargs: Any) -> Any:
        raise KeyError("surprise")

    monkeypatch.setattr(FuseHook, "aget_call", broken)
    event = await run(FuseCallsTrigger(ids, poll_interval=0.01))
    assert event["status"] == "error" and "failed unexpectedly: KeyError('surprise')" in event["message"]


async def test_the_deadline_ends_the_wait_with_the_calls_still_open(sim: FuseSimulator) -> None:
    ids = queue(sim, {"+16175550101": "answer"}, start_timestamp=int(sim.now()) + 86_400)
    deadline = time.time() + 2  # time for a first poll on a busy machine
    # A call that starts tomorrow: only the deadline can end this wait before HANG runs out.
    event = await run(FuseCallsTrigger(ids, poll_interval=0.05, deadline=deadline), HANG)
    assert time.time() >= deadline, "the wait ended before its deadline"
    assert event["status"] == "timeout" and "NOT cancelled" in event["message"]
    assert time.strftime("%H:%M:%S", time.gmtime(deadline)) in event["message"]
    assert event["calls"][0][1] == "queued" and sim.requests("cancel") == []


async def test_the_deadline_is_kept_while_every_slot_waits_on_a_slow_answer(sim: FuseSimulator) -> None:
    ids = queue(sim, {"+16175550101": "answer", "+16175550102": "answer"})
    # Answers held back an hour (the hook's read timeout, 30 s, then retries): a trigger that waits
    # for its one slot instead of its deadline is still waiting when HANG runs out.
    sim.faults.inject("status", "slow", count=2, delay=3600)
    deadline = time.time() + 2  # time for the first poll to reach Fuse on a busy machine
    event = await run(FuseCallsTrigger(ids, poll_interval=0.01, deadline=deadline, max_concurrency=1), HANG)
    assert time.time() >= deadline
    assert event["status"] == "timeout" and event["calls"][0][1] is None
    assert [e.fault for e in sim.requests("status")] == ["slow"], "one poll, in flight at the deadline"


async def test_a_trigger_rebuilt_after_a_triggerer_restart_polls_again_and_finishes(
    sim: FuseSimulator,
) -> None:
    ids = queue(
        sim, {f"+1617555{n:04d}": "busy:1" for n in range(110, 130)}, max_attempts=2, reattempt_wait=120
    )
    first = FuseCallsTrigger(ids, poll_interval=0.05, deadline=time.time() + 120)
    task = asyncio.ensure_future(run(first))

    async def first_polls() -> None:
        while len(sim.requests("status")) < 5:
            await asyncio.sleep(0.01)

    await within(HANG, first_polls(), "the first trigger's polls")
    task.cancel()  # the triggerer stops mid-wait
    with pytest.raises(asyncio.CancelledError):
        await task
    polled_before = len(sim.requests("status"))
    assert polled_before > 0

    path, kwargs = first.serialize()
    assert path.endswith("FuseCallsTrigger")
    event = await run(FuseCallsTrigger(**kwargs))
    assert event["status"] == "done" and {c[1] for c in event["calls"]} == {"completed"}
    assert len(sim.requests("status")) - polled_before >= len(ids)


async def test_requests_stay_under_the_concurrency_bound_and_the_rate_ceiling_on_one_session(
    sim: FuseSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = queue(sim, {f"+1617555{n:04d}": "answer" for n in range(200, 240)})
    sessions: set[int] = set()
    in_flight, most, started = 0, 0, []
    original = hook_module._aget

    async def spy(session: Any, settings: Any, path: str, *rest: Any) -> Any:
        nonlocal in_flight, most
        sessions.add(id(session))
        started.append(time.monotonic())
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.02)
        try:
            return await original(session, settings, path, *rest)
        finally:
            in_flight -= 1

    monkeypatch.setattr(hook_module, "_aget", spy)
    sim.advance(3600)  # every call has ended: one poll each
    trigger = FuseCallsTrigger(ids, poll_interval=0.01, max_concurrency=3, max_requests_per_second=100)
    event = await run(trigger)
    assert event["status"] == "done" and event["requests"] == len(ids) == len(started)
    assert most == 3 and len(sessions) == 1
    # 40 requests at 100/s with a burst of 100: no faster than the ceiling allows over any second.
    assert all(sum(1 for t in started if s <= t < s + 1) <= 100 for s in started)


async def test_rate_ceiling_spaces_requests_beyond_the_burst(
    sim: FuseSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = queue(sim, {f"+1617555{n:04d}": "answer" for n in range(300, 315)})
    sim.advance(3600)  # every call has ended: one poll each
    sent: list[float] = []
    original = hook_module._aget

    async def spy(session: Any, settings: Any, path: str, *rest: Any) -> Any:
        sent.append(asyncio.get_running_loop().time())
        return await original(session, settings, path, *rest)

    monkeypatch.setattr(hook_module, "_aget", spy)
    event = await run(FuseCallsTrigger(ids, poll_interval=0.01, max_requests_per_second=5))
    assert event["status"] == "done" and len(sent) == len(ids)
    # A token bucket of 5 a second: a one-second burst of 5, then one every 0.2 s. Within any second
    # at most 5 + 5 requests start (+2 for a request that starts a little after its turn); a machine
    # this busy only spreads them further. Without the ceiling, all 15 leave at once.
    assert max(sum(1 for t in sent if s <= t < s + 1) for s in sent) <= 12


async def test_run_never_blocks_the_event_loop(sim: FuseSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """No blocking sleep and no sync HTTP: either would stall every other trigger of the triggerer."""
    ids = queue(
        sim, {f"+1617555{n:04d}": "busy:1" for n in range(400, 420)}, max_attempts=2, reattempt_wait=60
    )
    sim.faults.inject("status", "503", count=3)

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("blocking call inside the trigger")

    monkeypatch.setattr(time, "sleep", forbidden)
    monkeypatch.setattr(requests.Session, "request", forbidden)
    event = await run(
        FuseCallsTrigger(ids, poll_interval=0.02, max_requests_per_second=50, deadline=time.time() + 60)
    )
    assert event["status"] == "done" and event["requests"] > len(ids)

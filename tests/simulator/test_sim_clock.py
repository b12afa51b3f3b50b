"""The calendar stays on real time; each call's durations run ``speed`` times faster from its queueing.

A simulator started long before a call is queued must give that call its whole dialing window, as
computed from the real clock (the failure of issue 17: "queued at 19:22:26Z, expired at 19:22:26Z").
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from airflow_provider_fuse import protocol
from airflow_provider_fuse.testing import FuseSimulator
from airflow_provider_fuse.testing.clock import SimClock

from .conftest import NUMBER, T0, FuseClient, Receiver, session, wait_until

SPEED = 600
FOUR_HOURS = 4 * 3600


@dataclass
class RealClock:
    """The 'real' clock handed to the simulator: moves only when the test says so."""

    now: float = float(T0)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def real() -> RealClock:
    return RealClock()


@pytest.fixture
def fast(real: RealClock) -> Iterator[FuseClient]:
    """A simulator at 600x whose real clock is the test's."""
    with FuseSimulator(speed=SPEED, clock=real) as sim, session() as client:
        yield FuseClient(sim, client)


def events(details: dict[str, object]) -> list[tuple[str, int]]:
    return [(e["event"], e["timestamp"]) for e in details["events"]]  # type: ignore[attr-defined,index]


def test_a_call_queued_30_real_seconds_after_start_dials_inside_its_window(
    fast: FuseClient, real: RealClock
) -> None:
    real.sleep(30)  # 5 simulated hours at 600x: more than the window below
    start = int(real())  # the window as Airflow computes it, from the real clock
    end = start + FOUR_HOURS
    fast.sim.script(NUMBER, "busy:2")
    call_id = fast.queue_id(start_timestamp=start, end_timestamp=end, max_attempts=3, reattempt_wait=600)
    assert fast.details(call_id)["status"] == protocol.QUEUED
    real.sleep(10)  # 6,000 s of the call's time: two busy attempts, 10-minute waits, the answer
    details = fast.details(call_id)
    assert (details["status"], details["attempts"]) == (protocol.COMPLETED, "3")
    dials = [at for name, at in events(details) if name == "dialing"]
    assert dials[0] == start + 1 and all(start <= at < end for at in dials)
    assert details["queued_timestamp"] == str(start)


def test_a_future_start_is_waited_for_in_sped_up_time(fast: FuseClient, real: RealClock) -> None:
    start = int(real()) + 3600
    call_id = fast.queue_id(start_timestamp=start)
    real.sleep(3599 / SPEED)
    assert fast.details(call_id)["status"] == protocol.QUEUED
    real.sleep(1 / SPEED)
    details = fast.details(call_id)
    assert details["status"] == protocol.DIALING
    assert events(details)[-1] == ("dialing", start)
    assert fast.sim.now() == T0 + 6  # the calendar moved six real seconds, not an hour


def test_the_calendar_stays_real_while_each_call_runs_ahead(fast: FuseClient, real: RealClock) -> None:
    first = fast.queue_id(start_timestamp=T0 + 86_400)
    real.sleep(10)
    assert fast.sim.now() == T0 + 10
    assert fast.sim.now(first) == T0 + 10 * SPEED  # a call's timestamps run ahead of the wall clock
    second = fast.queue_id(start_timestamp=T0 + 86_400)
    assert fast.details(second)["queued_timestamp"] == str(T0 + 10)  # queued at the real time
    real.sleep(1)
    assert (fast.sim.now(first), fast.sim.now(second)) == (T0 + 11 * SPEED, T0 + 10 + SPEED)
    assert fast.sim.advance(100) == T0 + 11 + 100  # by hand: the calendar and every call alike
    assert (fast.sim.now(first), fast.sim.now(second)) == (T0 + 11 * SPEED + 100, T0 + 10 + SPEED + 100)


def test_cancel_stamps_each_call_at_its_own_time(fast: FuseClient, real: RealClock) -> None:
    early = fast.queue_id(start_timestamp=T0 + 86_400)
    real.sleep(10)
    late = fast.queue_id(start_timestamp=T0 + 86_400)
    real.sleep(1)
    assert fast.cancel().status_code == 202
    assert events(fast.details(early))[-1] == ("canceled", T0 + 11 * SPEED)
    assert events(fast.details(late))[-1] == ("canceled", T0 + 10 + SPEED)
    assert fast.sim.status(early) == fast.sim.status(late) == protocol.CANCELED


def test_how_long_ago_the_simulator_started_changes_no_call() -> None:
    timelines = []
    for started_ago in (0, 3600):
        real = RealClock()
        with FuseSimulator(speed=SPEED, clock=real, started_ago=started_ago) as sim, session() as client:
            fuse = FuseClient(sim, client)
            call_id = fuse.queue_id(start_timestamp=int(real()), end_timestamp=int(real()) + FOUR_HOURS)
            real.sleep(1)
            timelines.append(events(fuse.details(call_id)))
    assert timelines[0] == timelines[1]
    assert [name for name, _ in timelines[0]] == ["queued", "dialing", "connected", "disconnected"]


def test_a_simulator_started_long_ago_posts_the_callback_of_a_call_inside_its_window(
    receiver: Receiver,
) -> None:
    with FuseSimulator(speed=60_000, started_ago=3600) as sim, session() as client:
        now = int(time.time())  # the window as Airflow computes it, from the real clock
        call_id = FuseClient(sim, client).queue_id(
            start_timestamp=now, end_timestamp=now + FOUR_HOURS, result_url=receiver.url()
        )
        _, _, body = receiver.next()  # a few real milliseconds on the running clock
        (delivery,) = wait_until(lambda: sim.callbacks)
    assert body["status"] == protocol.COMPLETED, body
    assert delivery.call_ids == [call_id]
    assert all(now <= e["timestamp"] < now + FOUR_HOURS for e in body["events"] if e["event"] == "dialing")


def test_started_ago_cannot_be_negative() -> None:
    with pytest.raises(ValueError, match="started_ago cannot be negative"):
        SimClock(SPEED, started_ago=-1)

"""FuseCallsTrigger with result_url="airflow": callbacks read incrementally end their calls with no
status request; only calls without one are polled, after the dialing window plus the grace."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aioresponses import aioresponses

from airflow_provider_fuse import callbacks
from airflow_provider_fuse.callbacks import HEAD_KEY, chunk_key
from airflow_provider_fuse.triggers.fuse import CALLBACKS_READ_SECONDS, FuseCallsTrigger
from tests.callback_support import FakeClock, recorded_callbacks
from tests.conftest import FUSE_URL, HANG, within

pytestmark = pytest.mark.usefixtures("fuse_conn", "no_polling_limits")

TI = SimpleNamespace(dag_id="reminders", run_id="manual__1", task_id="campaign", map_index=-1)
GRACE = 600.0


def ended(call_id: str | None, status: str = "completed") -> dict[str, Any]:
    return {"call_id": call_id, "status": status, "phone_number": "61***234", "attempts": 1, "events": []}


def status(status: str) -> dict[str, Any]:
    return {"call_details": {"status": status, "attempts": "1", "phone_number": "'6175551234'", "events": []}}


class Record:
    """The task instance's callbacks as the plugin writes them, growing as the fake clock passes times."""

    def __init__(self, clock: FakeClock, monkeypatch: pytest.MonkeyPatch):
        self.clock = clock
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self.reads: list[str] = []
        monkeypatch.setattr(callbacks, "_aget", self.aget)

    def arrive(self, after: float, details: dict[str, Any]) -> None:
        self.arrivals.append((self.clock.now + after, details))

    async def aget(self, ti: Any, key: str) -> Any:
        assert ti is TI
        self.reads.append(key)
        arrived = [details for at, details in self.arrivals if at <= self.clock.now]
        return recorded_callbacks(arrived).get(key) if arrived else None


@pytest.fixture
def record(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Record:
    return Record(clock, monkeypatch)


def trigger(clock: FakeClock, call_ids: list[str], **kwargs: Any) -> FuseCallsTrigger:
    made = FuseCallsTrigger(call_ids, poll_interval=60, callbacks_until=clock.now + GRACE, **kwargs)
    made.task_instance = TI
    return made


async def run(made: FuseCallsTrigger) -> dict[str, Any]:
    async def events() -> list[dict[str, Any]]:
        return [event.payload async for event in made.run()]

    (event,) = await within(HANG, events(), "the trigger")
    return event


async def test_a_campaign_whose_callbacks_all_arrive_sends_zero_status_requests(
    clock: FakeClock, record: Record
) -> None:
    record.arrive(0, ended("1"))
    record.arrive(40, ended("2", "failed"))
    record.arrive(130, ended("3"))
    start = clock.now
    with aioresponses() as m:
        event = await run(trigger(clock, ["1", "2", "3"]))
    assert m.requests == {}
    assert event["status"] == "done" and (event["requests"], event["callbacks"]) == (0, 3)
    assert [row[:2] for row in event["calls"]] == [["1", "completed"], ["2", "failed"], ["3", "completed"]]
    assert clock.now - start <= 130 + CALLBACKS_READ_SECONDS, "the last callback is seen at the next read"


async def test_reads_are_incremental_one_head_read_when_nothing_is_new(
    clock: FakeClock, record: Record
) -> None:
    record.arrive(0, ended("1"))
    record.arrive(100, ended("2"))
    with aioresponses():
        await run(trigger(clock, ["1", "2"]))
    chunk_reads = [key for key in record.reads if key != HEAD_KEY]
    assert chunk_reads == [chunk_key(0), chunk_key(0)], "a chunk is read only when the head moved"
    assert record.reads.count(HEAD_KEY) >= 100 // CALLBACKS_READ_SECONDS


async def test_only_the_call_without_a_callback_is_polled_and_only_after_the_grace(
    clock: FakeClock, record: Record
) -> None:
    record.arrive(0, ended("1"))
    record.arrive(30, ended("2"))
    made = trigger(clock, ["1", "2", "3"])
    asked_at: list[float] = []

    def note(url: Any, **kwargs: Any) -> None:
        asked_at.append(clock.now)

    with aioresponses() as m:
        m.get(f"{FUSE_URL}/outbound/3", payload=status("completed"), callback=note)
        event = await run(made)
    assert [str(url) for _, url in m.requests] == [f"{FUSE_URL}/outbound/3"]
    assert asked_at == [made.callbacks_until]
    assert (event["status"], event["requests"], event["callbacks"]) == ("done", 1, 2)


async def test_a_callback_for_a_call_already_polled_to_its_end_changes_nothing(
    clock: FakeClock, record: Record
) -> None:
    record.arrive(GRACE + 200, ended("1", "failed"))
    with aioresponses() as m:
        m.get(f"{FUSE_URL}/outbound/1", payload=status("completed"))
        event = await run(trigger(clock, ["1"]))
    assert event["calls"][0][1] == "completed" and event["callbacks"] == 0


def test_callbacks_until_round_trips_and_stays_out_when_unset() -> None:
    path, kwargs = FuseCallsTrigger(["1"], callbacks_until=1_800_000_900.0).serialize()
    assert kwargs["callbacks_until"] == 1_800_000_900.0
    assert FuseCallsTrigger(**kwargs).serialize() == (path, kwargs)
    assert "callbacks_until" not in FuseCallsTrigger(["1"]).serialize()[1]

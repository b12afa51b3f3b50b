"""FuseCallTrigger with result_url="airflow": the recorded callback decides the call with zero status
requests; without one, Fuse is asked only after the dialing window plus the grace. Injected clock."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aioresponses import aioresponses

from airflow_provider_fuse import callbacks
from airflow_provider_fuse.callbacks import HEAD_KEY
from airflow_provider_fuse.triggers.fuse import FuseCallTrigger
from tests.callback_support import FakeClock, recorded_callbacks
from tests.conftest import FUSE_URL, HANG, within

pytestmark = pytest.mark.usefixtures("fuse_conn")

STATUS_URL = f"{FUSE_URL}/outbound/5"
TI = SimpleNamespace(dag_id="reminders", run_id="manual__1", task_id="call", map_index=-1)
DONE = {"call_id": None, "status": "completed", "phone_number": "61***234", "attempts": 1, "events": []}


@pytest.fixture
def xcom(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The task instance's XCom as the plugin leaves it; ``reads`` lists the keys read."""
    values: dict[str, Any] = {"reads": []}

    async def aget(ti: Any, key: str) -> Any:
        assert (ti.dag_id, ti.run_id, ti.task_id, ti.map_index) == (TI.dag_id, TI.run_id, TI.task_id, -1)
        values["reads"].append(key)
        return values.get(key)

    monkeypatch.setattr(callbacks, "_aget", aget)
    return values


def trigger(clock: FakeClock, *, grace: float = 600.0, **kwargs: Any) -> FuseCallTrigger:
    made = FuseCallTrigger("5", poll_interval=30, callbacks_until=clock.now + grace, **kwargs)
    made.task_instance = TI  # what the triggerer sets before run()
    return made


async def run(made: FuseCallTrigger) -> list[dict[str, Any]]:
    async def events() -> list[dict[str, Any]]:
        return [event.payload async for event in made.run()]

    return await within(HANG, events(), "the trigger")


def status(status: str) -> dict[str, Any]:
    return {"call_details": {"status": status, "attempts": "1", "phone_number": "'6175551234'", "events": []}}


async def test_a_recorded_callback_ends_the_wait_with_zero_status_requests(
    clock: FakeClock, xcom: dict[str, Any]
) -> None:
    xcom.update(recorded_callbacks([DONE]))
    with aioresponses() as m:
        (event,) = await run(trigger(clock))
    assert m.requests == {}
    assert (event["status"], event["call_id"]) == ("completed", "5")
    assert event["call_details"]["call_id"] == "5" and "callback" in event["message"]


async def test_a_callback_arriving_while_waiting_is_found_at_the_next_look(
    clock: FakeClock, xcom: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    arrives_at = clock.now + 95
    aget = callbacks._aget

    async def arriving(ti: Any, key: str) -> Any:
        if clock.now >= arrives_at:
            xcom.update(recorded_callbacks([{**DONE, "status": "failed"}]))
        return await aget(ti, key)

    monkeypatch.setattr(callbacks, "_aget", arriving)
    with aioresponses() as m:
        (event,) = await run(trigger(clock))
    assert m.requests == {}
    assert event["status"] == "failed"
    assert arrives_at <= clock.now <= arrives_at + 30 * 1.1, "seen within one poll interval"
    assert xcom["reads"].count(HEAD_KEY) >= 4, "the record is read every poll interval"


async def test_without_a_callback_fuse_is_asked_only_after_the_window_and_grace(
    clock: FakeClock, xcom: dict[str, Any]
) -> None:
    made = trigger(clock, grace=600.0)
    asked_at: list[float] = []

    def note(url: Any, **kwargs: Any) -> None:
        asked_at.append(clock.now)

    with aioresponses() as m:
        m.get(STATUS_URL, payload=status("connected"), callback=note)
        m.get(STATUS_URL, payload=status("completed"), callback=note)
        (event,) = await run(made)
    assert event["status"] == "completed"
    assert len(asked_at) == 2
    assert asked_at[0] == made.callbacks_until, "the first status request is at the end of the grace"
    assert xcom["reads"].count(HEAD_KEY) >= 600 // 33, "the record was read all along"


async def test_a_deadline_before_the_grace_ends_the_wait_without_any_status_request(
    clock: FakeClock, xcom: dict[str, Any]
) -> None:
    with aioresponses() as m:
        (event,) = await run(trigger(clock, grace=600.0, deadline=clock.now + 120))
    assert m.requests == {}
    assert event["status"] == "timeout" and "NOT cancelled" in event["message"]


async def test_a_callback_with_no_terminal_status_is_not_an_outcome(
    clock: FakeClock, xcom: dict[str, Any]
) -> None:
    xcom.update(recorded_callbacks([{**DONE, "status": "dialing"}]))
    with aioresponses() as m:
        m.get(STATUS_URL, payload=status("completed"))
        (event,) = await run(trigger(clock, grace=60.0))
    assert event["status"] == "completed" and len(m.requests) == 1


async def test_without_callbacks_the_record_is_never_read(clock: FakeClock, xcom: dict[str, Any]) -> None:
    made = FuseCallTrigger("5", poll_interval=30)
    made.task_instance = TI
    with aioresponses() as m:
        m.get(STATUS_URL, payload=status("completed"))
        (event,) = await run(made)
    assert event["status"] == "completed" and xcom["reads"] == []


async def test_run_inline_without_its_task_instance_it_reads_the_one_its_arguments_name(
    clock: FakeClock, xcom: dict[str, Any]
) -> None:
    """`airflow dags test` runs the trigger inline and does not tell it its task instance."""
    xcom.update(recorded_callbacks([DONE]))
    made = FuseCallTrigger("5", poll_interval=30, callbacks_until=clock.now + 600, callbacks_ti=vars(TI))
    with aioresponses() as m:
        (event,) = await run(made)
    assert m.requests == {} and event["status"] == "completed"


def test_callbacks_until_round_trips_and_stays_out_when_unset() -> None:
    path, kwargs = FuseCallTrigger("5", callbacks_until=1_800_000_900.0).serialize()
    assert kwargs["callbacks_until"] == 1_800_000_900.0
    assert FuseCallTrigger(**kwargs).serialize() == (path, kwargs)
    assert "callbacks_until" not in FuseCallTrigger("5").serialize()[1]

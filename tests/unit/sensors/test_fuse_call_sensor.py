"""FuseCallSensor against requests-mock: poke, fail fast, defer with its own deadline, in every mode."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import requests_mock as rm
from aioresponses import aioresponses
from airflow.providers.common.compat.sdk import TaskDeferred
from airflow.sdk import PokeReturnValue

from airflow_provider_fuse.exceptions import FuseCallFailed
from airflow_provider_fuse.sensors.fuse import FuseCallSensor
from airflow_provider_fuse.triggers.fuse import FuseCallTrigger
from tests.conftest import FUSE_URL, HANG, within
from tests.support import FakeTI, context, status_body

pytestmark = pytest.mark.usefixtures("fuse_conn")


def sensor(**kwargs: Any) -> FuseCallSensor:
    return FuseCallSensor(task_id="wait", call_id="5", poke_interval=1, timeout=60, **kwargs)


class SensorTI(FakeTI):
    """What BaseSensorOperator asks of its task instance in reschedule mode."""

    def get_first_reschedule_date(self, context: Any) -> None:
        return None  # the first poke of the first try


SENSOR_MODES = pytest.mark.parametrize(
    ("mode", "deferrable"),
    [("poke", False), ("reschedule", False), ("poke", True)],
    ids=["poke", "reschedule", "deferrable"],
)


def deferred_event(sensor: FuseCallSensor, status: str) -> dict[str, Any]:
    """Defer ``sensor`` while its call is queued, then run its trigger until the call ends ``status``."""
    with rm.Mocker() as m, pytest.raises(TaskDeferred) as info:
        m.get(f"{FUSE_URL}/outbound/5", json=status_body("queued"))
        sensor.execute({"ti": SensorTI()})
    assert info.value.method_name == "execute_complete"

    async def events() -> list[dict[str, Any]]:
        return [event.payload async for event in info.value.trigger.run()]

    with aioresponses() as m:
        m.get(f"{FUSE_URL}/outbound/5", payload=status_body(status))
        (event,) = asyncio.run(within(HANG, events(), "FuseCallTrigger"))
    return event


def test_sensor_poke_returns_false_until_done_then_the_details() -> None:
    with rm.Mocker() as m:
        m.get(
            f"{FUSE_URL}/outbound/5", [{"json": status_body("dialing")}, {"json": status_body("completed")}]
        )
        assert sensor().poke(context()) is False
        result = sensor().poke(context())
    assert isinstance(result, PokeReturnValue) and result.is_done
    assert result.xcom_value["status"] == "completed"


@SENSOR_MODES
@pytest.mark.parametrize("status", ["failed", "rejected", "canceled"])
def test_sensor_fails_at_once_on_unsuccessful_calls_in_every_mode(
    mode: str, deferrable: bool, status: str
) -> None:
    with rm.Mocker() as m, pytest.raises(FuseCallFailed, match=status):
        m.get(f"{FUSE_URL}/outbound/5", json=status_body(status))
        sensor(mode=mode, deferrable=deferrable).execute({"ti": SensorTI()})
    assert m.call_count == 1, "one status request decided it: no further poke, no deferral"


@SENSOR_MODES
def test_sensor_succeeds_with_the_masked_details_in_every_mode(mode: str, deferrable: bool) -> None:
    with rm.Mocker() as m:
        m.get(f"{FUSE_URL}/outbound/5", json=status_body("completed"))
        result = sensor(mode=mode, deferrable=deferrable).execute({"ti": SensorTI()})
    assert (result["status"], result["phone_number"]) == ("completed", "61***234")


@pytest.mark.parametrize("status", ["failed", "rejected", "canceled"])
def test_deferred_sensor_fails_when_its_trigger_reports_an_unsuccessful_call(status: str) -> None:
    waiting = sensor(deferrable=True)
    event = deferred_event(waiting, status)
    assert event["status"] == status
    with pytest.raises(FuseCallFailed, match=status):
        waiting.execute_complete({"ti": SensorTI()}, event)


def test_deferred_sensor_returns_the_details_its_trigger_reports_completed() -> None:
    waiting = sensor(deferrable=True)
    result = waiting.execute_complete({"ti": SensorTI()}, deferred_event(waiting, "completed"))
    assert (result["call_id"], result["status"]) == ("5", "completed")


def test_sensor_deferrable_defers_with_poke_interval_and_timeout_as_deadline() -> None:
    before = time.time()
    with rm.Mocker() as m, pytest.raises(TaskDeferred) as info:
        m.get(f"{FUSE_URL}/outbound/5", json=status_body("queued"))
        sensor(deferrable=True).execute(context())
    after = time.time()
    trigger = info.value.trigger
    assert isinstance(trigger, FuseCallTrigger) and trigger.poll_interval == 1.0
    assert before + 60 <= trigger.deadline <= after + 60, "the deadline is the sensor's timeout from now"

"""FuseCallSensor against requests-mock: poke, fail fast, defer with its own deadline, in every mode."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests_mock as rm
from aioresponses import aioresponses
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException, TaskDeferred
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


def deferred_event(sensor: FuseCallSensor, status: str, *, deadline_passed: bool = False) -> dict[str, Any]:
    """Defer ``sensor`` while its call is queued, then run its trigger until the call ends ``status``
    (or, with ``deadline_passed``, as if the sensor's timeout had run out while it was ``status``)."""
    with rm.Mocker() as m, pytest.raises(TaskDeferred) as info:
        m.get(f"{FUSE_URL}/outbound/5", json=status_body("queued"))
        sensor.execute({"ti": SensorTI()})
    assert info.value.method_name == "execute_complete"
    trigger = info.value.trigger
    if deadline_passed:
        trigger.deadline = time.time() - 1

    async def events() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    with aioresponses() as m:
        m.get(f"{FUSE_URL}/outbound/5", payload=status_body(status))
        (event,) = asyncio.run(within(HANG, events(), "FuseCallTrigger"))
    return event


class LateClock:
    """BaseSensorOperator's clock in poke mode: each reading a minute after the last; sleeps return at once."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 60.0
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class LongRescheduledTI(SensorTI):
    """Reschedule mode: the sensor's first poke was two hours ago."""

    def get_first_reschedule_date(self, context: Any) -> datetime:
        return datetime.now(timezone.utc) - timedelta(hours=2)


def timed_out(mode: str, deferrable: bool, soft_fail: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a sensor (``timeout=60``) whose call stays queued past its timeout, as Airflow would."""
    waiting = sensor(mode=mode, deferrable=deferrable, soft_fail=soft_fail)
    if deferrable:
        event = deferred_event(waiting, "queued", deadline_passed=True)
        assert event["status"] == "timeout"
        waiting.resume_execution("execute_complete", {"event": event}, {"ti": SensorTI()})
        return
    if mode == "poke":
        from airflow.sdk.bases import sensor as base_sensor

        monkeypatch.setattr(base_sensor, "time", LateClock())
    with rm.Mocker() as m:
        m.get(f"{FUSE_URL}/outbound/5", json=status_body("queued"))
        waiting.execute({"ti": LongRescheduledTI() if mode == "reschedule" else SensorTI()})


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


@SENSOR_MODES
def test_a_timed_out_wait_is_airflows_sensor_timeout_in_every_mode(
    mode: str, deferrable: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AirflowSensorTimeout, not FuseWaitTimeout: Airflow fails the task without retrying it."""
    with pytest.raises(AirflowSensorTimeout):
        timed_out(mode, deferrable, False, monkeypatch)


@SENSOR_MODES
def test_a_timed_out_wait_with_soft_fail_skips_the_task_in_every_mode(
    mode: str, deferrable: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(AirflowSkipException):
        timed_out(mode, deferrable, True, monkeypatch)


def test_the_deferrable_sensor_gives_airflow_its_deadline_as_the_deferral_timeout() -> None:
    """Should the trigger never report, the triggerer still ends the wait at the sensor's deadline."""
    before = time.time()
    with rm.Mocker() as m, pytest.raises(TaskDeferred) as info:
        m.get(f"{FUSE_URL}/outbound/5", json=status_body("queued"))
        sensor(deferrable=True).execute(context())
    after = time.time()
    deferral = info.value
    assert deferral.timeout is not None
    # Both end at the same instant: the deadline, counted when the sensor started.
    assert before + 60 - after <= deferral.timeout.total_seconds() <= 60
    assert before + 60 <= deferral.trigger.deadline <= after + 60


@pytest.mark.parametrize(
    ("soft_fail", "raised"), [(False, AirflowSensorTimeout), (True, AirflowSkipException)]
)
def test_a_deferral_timed_out_by_the_triggerer_is_a_sensor_timeout(soft_fail: bool, raised: type) -> None:
    waiting = sensor(deferrable=True, soft_fail=soft_fail)
    with pytest.raises(raised):
        waiting.resume_execution("__fail__", {"error": "Trigger timeout"}, {"ti": SensorTI()})


def test_fuse_conn_id_is_templated() -> None:
    waiting = sensor(fuse_conn_id="{{ params.conn }}")
    waiting.render_template_fields({"params": {"conn": "fuse_eu"}})
    assert (waiting.fuse_conn_id, waiting.hook.fuse_conn_id) == ("fuse_eu", "fuse_eu")

"""FuseCallSensor against requests-mock: poke, fail fast, defer with its own deadline."""

from __future__ import annotations

from typing import Any

import pytest
import requests_mock as rm
from airflow.providers.common.compat.sdk import TaskDeferred
from airflow.sdk import PokeReturnValue

from airflow_provider_fuse.exceptions import FuseCallFailed
from airflow_provider_fuse.sensors.fuse import FuseCallSensor
from airflow_provider_fuse.triggers.fuse import FuseCallTrigger
from tests.conftest import FUSE_URL
from tests.support import context, status_body

pytestmark = pytest.mark.usefixtures("fuse_conn")


def sensor(**kwargs: Any) -> FuseCallSensor:
    return FuseCallSensor(task_id="wait", call_id="5", poke_interval=1, timeout=60, **kwargs)


def test_sensor_poke_returns_false_until_done_then_the_details() -> None:
    with rm.Mocker() as m:
        m.get(
            f"{FUSE_URL}/outbound/5", [{"json": status_body("dialing")}, {"json": status_body("completed")}]
        )
        assert sensor().poke(context()) is False
        result = sensor().poke(context())
    assert isinstance(result, PokeReturnValue) and result.is_done
    assert result.xcom_value["status"] == "completed"


@pytest.mark.parametrize("status", ["failed", "rejected", "canceled"])
def test_sensor_fails_at_once_on_unsuccessful_calls(status: str) -> None:
    with rm.Mocker() as m, pytest.raises(FuseCallFailed, match=status):
        m.get(f"{FUSE_URL}/outbound/5", json=status_body(status))
        sensor().poke(context())


def test_sensor_deferrable_defers_with_poke_interval_and_timeout_as_deadline() -> None:
    with rm.Mocker() as m, pytest.raises(TaskDeferred) as info:
        m.get(f"{FUSE_URL}/outbound/5", json=status_body("queued"))
        sensor(deferrable=True).execute(context())
    trigger = info.value.trigger
    assert isinstance(trigger, FuseCallTrigger) and trigger.poll_interval == 1.0 and trigger.deadline

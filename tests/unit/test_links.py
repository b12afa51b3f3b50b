"""FuseCallLink: the task's call id and the connection's base URL make the status resource's URL.

The real path (the worker pushing the link as an XCom, the API server serving it) is checked by the
browser test in tests/ui; here XCom is replaced so that the rules run without a supervisor.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.models.taskinstancekey import TaskInstanceKey
from airflow.sdk.execution_time.xcom import XCom

from airflow_provider_fuse import get_provider_info
from airflow_provider_fuse.links import CALL_ID_XCOM_KEY, FuseCallLink
from airflow_provider_fuse.operators.fuse import QueueCallOperator
from airflow_provider_fuse.sensors.fuse import FuseCallSensor

TI_KEY = TaskInstanceKey(dag_id="d", task_id="t", run_id="r")


@pytest.fixture
def xcoms(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The XComs the link sees, by key; the lookups are checked to name the link's task instance."""
    values: dict[str, Any] = {}

    def get_value(*, ti_key: TaskInstanceKey, key: str) -> Any:
        assert ti_key == TI_KEY
        return values.get(key)

    monkeypatch.setattr(XCom, "get_value", get_value)
    return values


def queue_operator(**kwargs: Any) -> QueueCallOperator:
    return QueueCallOperator(
        task_id="t", application_id=1, deployment_id=2, phone_number="+16175550123", **kwargs
    )


def test_operator_link_points_at_the_queued_calls_status(
    fuse_conn: dict[str, str], xcoms: dict[str, Any]
) -> None:
    xcoms[CALL_ID_XCOM_KEY] = "4242"
    assert FuseCallLink().get_link(queue_operator(), ti_key=TI_KEY) == "https://fuse.test/api/outbound/4242"


def test_sensor_link_uses_its_rendered_call_id(fuse_conn: dict[str, str], xcoms: dict[str, Any]) -> None:
    sensor = FuseCallSensor(task_id="t", call_id="77")
    assert FuseCallLink().get_link(sensor, ti_key=TI_KEY) == "https://fuse.test/api/outbound/77"


def test_link_follows_the_tasks_own_connection(
    monkeypatch: pytest.MonkeyPatch, xcoms: dict[str, Any]
) -> None:
    conn = {"conn_type": "fuse", "host": "fuse.example.org", "login": "a@b.c", "password": "k"}
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_EU", json.dumps(conn))
    xcoms[CALL_ID_XCOM_KEY] = 9
    link = FuseCallLink().get_link(queue_operator(fuse_conn_id="fuse_eu"), ti_key=TI_KEY)
    assert link == "https://fuse.example.org/api/outbound/9"
    assert "a@b.c" not in link and "k@" not in link


def test_no_call_id_means_no_link(fuse_conn: dict[str, str], xcoms: dict[str, Any]) -> None:
    """A task that failed validation queued nothing: Airflow hides a link whose URL is empty."""
    assert FuseCallLink().get_link(queue_operator(), ti_key=TI_KEY) == ""


def test_link_is_registered_and_declared_by_the_call_tasks() -> None:
    assert "airflow_provider_fuse.links.FuseCallLink" in get_provider_info()["extra-links"]
    assert FuseCallLink().name == "Fuse call status"
    for task_class in (QueueCallOperator, FuseCallSensor):
        assert any(isinstance(link, FuseCallLink) for link in task_class.operator_extra_links), task_class


def test_the_link_reads_the_connection_without_loading_the_hook() -> None:
    """The link needs the base URL and the call id rule (connection.py), not the HTTP client code."""
    import subprocess
    import sys

    code = """
import json, os, sys
os.environ["AIRFLOW_CONN_FUSE_DEFAULT"] = json.dumps(
    {"conn_type": "fuse", "host": "fuse.example.org", "login": "a@b.c", "password": "k"})
from airflow.models.taskinstancekey import TaskInstanceKey
from airflow_provider_fuse.links import FuseCallLink
from airflow_provider_fuse.sensors.fuse import FuseCallSensor
link = FuseCallLink().get_link(FuseCallSensor(task_id="t", call_id="77"), ti_key=TaskInstanceKey("d", "t", "r"))
print(link, sorted(m for m in ("airflow_provider_fuse.hooks.fuse", "requests", "aiohttp") if m in sys.modules))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split("\n")[-2] == "https://fuse.example.org/api/outbound/77 []"

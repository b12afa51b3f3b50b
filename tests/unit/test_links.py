"""The extra links of call and campaign tasks point at the task's page in the fuse plugin.

The real path (the worker pushing the link as an XCom, the API server serving the page) is checked by
the browser tests in tests/ui; here XCom is replaced so that the rules run without a supervisor.
"""

from __future__ import annotations

from typing import Any

import pytest
from airflow.models.taskinstancekey import TaskInstanceKey
from airflow.sdk.execution_time.xcom import XCom

from airflow_provider_fuse import get_provider_info
from airflow_provider_fuse.links import CALL_ID_XCOM_KEY, FuseCallLink, FuseCampaignLink
from airflow_provider_fuse.operators.fuse import QueueCallOperator, QueueCallsOperator
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


BASE = "https://airflow.example.com/prefix"


@pytest.fixture
def base_url(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE + "/")
    return BASE


def test_call_link_opens_the_tasks_call_page_on_the_api_server(base_url: str, xcoms: dict[str, Any]) -> None:
    xcoms[CALL_ID_XCOM_KEY] = "4242"
    link = FuseCallLink().get_link(queue_operator(), ti_key=TI_KEY)
    assert link == f"{base_url}/fuse/tasks/d/r/t/-1"


def test_sensor_link_shows_once_it_has_a_call_id(base_url: str, xcoms: dict[str, Any]) -> None:
    sensor = FuseCallSensor(task_id="t", call_id="77")
    assert FuseCallLink().get_link(sensor, ti_key=TI_KEY) == f"{base_url}/fuse/tasks/d/r/t/-1"


def test_a_mapped_tasks_link_names_its_map_index_and_encodes_the_run_id(
    base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = TaskInstanceKey(dag_id="d", task_id="t", run_id="manual__2026-11-30T09:00:00+00:00", map_index=3)
    monkeypatch.setattr(XCom, "get_value", lambda *, ti_key, key: "9" if ti_key.map_index == 3 else None)
    link = FuseCallLink().get_link(queue_operator(), ti_key=key)
    assert link == f"{base_url}/fuse/tasks/d/manual__2026-11-30T09%3A00%3A00%2B00%3A00/t/3"


def test_without_base_url_the_link_is_relative_to_the_ui(
    monkeypatch: pytest.MonkeyPatch, xcoms: dict[str, Any]
) -> None:
    """Airflow's UI resolves it against its ``<base href>``, which is the API server's address."""
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    xcoms[CALL_ID_XCOM_KEY] = "4242"
    assert FuseCallLink().get_link(queue_operator(), ti_key=TI_KEY) == "fuse/tasks/d/r/t/-1"


def test_the_link_never_carries_the_connection_or_its_key(
    base_url: str, fuse_conn: dict[str, str], xcoms: dict[str, Any]
) -> None:
    xcoms[CALL_ID_XCOM_KEY] = "4242"
    link = FuseCallLink().get_link(queue_operator(), ti_key=TI_KEY)
    assert fuse_conn["password"] not in link and fuse_conn["login"] not in link and "fuse.test" not in link


def test_no_call_id_means_no_call_link(base_url: str, xcoms: dict[str, Any]) -> None:
    """A task that failed validation queued nothing: Airflow hides a link whose URL is empty."""
    assert FuseCallLink().get_link(queue_operator(), ti_key=TI_KEY) == ""


def test_campaign_link_opens_the_campaign_page(base_url: str, xcoms: dict[str, Any]) -> None:
    campaign = QueueCallsOperator(task_id="t", application_id=1, deployment_id=2, calls=[])
    assert FuseCampaignLink().get_link(campaign, ti_key=TI_KEY) == f"{base_url}/fuse/tasks/d/r/t/-1"


def test_links_are_registered_and_declared_by_the_call_and_campaign_tasks() -> None:
    assert get_provider_info()["extra-links"] == [
        "airflow_provider_fuse.links.FuseCallLink",
        "airflow_provider_fuse.links.FuseCampaignLink",
    ]
    assert (FuseCallLink().name, FuseCampaignLink().name) == ("Fuse call status", "Fuse campaign")
    for task_class in (QueueCallOperator, FuseCallSensor):
        assert [type(link) for link in task_class.operator_extra_links] == [FuseCallLink], task_class
    assert [type(link) for link in QueueCallsOperator.operator_extra_links] == [FuseCampaignLink]


def test_the_link_loads_neither_the_hook_nor_the_plugins_app() -> None:
    """A worker builds the link: it needs the page's path, not HTTP clients or the web framework."""
    import subprocess
    import sys

    code = """
import os, sys
os.environ["AIRFLOW__API__BASE_URL"] = "http://127.0.0.1:8080"
from airflow.models.taskinstancekey import TaskInstanceKey
from airflow_provider_fuse.links import FuseCallLink
from airflow_provider_fuse.sensors.fuse import FuseCallSensor
link = FuseCallLink().get_link(FuseCallSensor(task_id="t", call_id="77"), ti_key=TaskInstanceKey("d", "t", "r"))
heavy = ("airflow_provider_fuse.hooks.fuse", "requests", "aiohttp", "fastapi", "airflow_provider_fuse.plugins.pages")
print(link, sorted(m for m in heavy if m in sys.modules))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split("\n")[-2] == "http://127.0.0.1:8080/fuse/tasks/d/r/t/-1 []"

"""A Fuse call in the task view: rendered variables as JSON (``***`` for an ``is_pci`` call's), the
"Fuse call status" link, the task docs.

The DAG (tests/ui/dags) runs with ``airflow dags test`` against the simulator in the same AIRFLOW_HOME
as the api-server, which then shows the run like any other.
"""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from airflow_provider_fuse.operators.fuse import QueueCallOperator
from airflow_provider_fuse.plugins import task_page_path
from airflow_provider_fuse.testing import FuseSimulator

from .conftest import AirflowUI, Shots

if TYPE_CHECKING:
    from playwright.sync_api import Page

# Airflow standalone (up to 90 s) and a real DAG run (up to 180 s) on top of the browser.
pytestmark = [pytest.mark.ui, pytest.mark.timeout(600)]

DAG_FILE = Path(__file__).parent / "dags" / "fuse_ui_task_view.py"
DAG_ID = "fuse_ui_task_view"
LINK_NAME = "Fuse call status"
TASKS = ("queue_call", "wait_for_call")


def test_task_view_shows_rendered_variables_call_link_and_docs(
    page: Page, airflow_ui: AirflowUI, simulator: FuseSimulator, shots: Shots
) -> None:
    from playwright.sync_api import expect

    sandbox = airflow_ui.sandbox
    shutil.copy(DAG_FILE, sandbox.dags_folder)
    env = {
        **simulator.connection_env(),
        "AIRFLOW__API__BASE_URL": airflow_ui.url,
    }  # the links are built from it
    result = sandbox.dags_test(DAG_ID, env=env, timeout=180)
    assert result.ok, result.output[-4000:]
    (run,) = airflow_ui.api("GET", f"/dags/{DAG_ID}/dagRuns")["dag_runs"]
    run_path = f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances"
    call_id = sandbox.xcom(DAG_ID, "queue_call", key="call_id")
    pages = {t: f"{airflow_ui.url}/{task_page_path(DAG_ID, run['dag_run_id'], t, -1)}" for t in TASKS}

    # What the API server keeps: the variables as a JSON object, each task's link to its call page.
    rendered = airflow_ui.api("GET", f"{run_path}/queue_call")["rendered_fields"]
    ds = run["logical_date"][:10]
    assert rendered["variables"] == {"name": "Ann Example", "appointment": "Monday at 10am", "run": ds}
    for task_id in TASKS:
        links = airflow_ui.api("GET", f"{run_path}/{task_id}/links")["extra_links"]
        assert links == {LINK_NAME: pages[task_id]}, task_id
    # The call the links are about ended as the pages show it (tests/ui/test_pages.py drives them).
    details = requests.get(
        f"{simulator.url}/outbound/{call_id}", auth=(simulator.login, simulator.password), timeout=10
    ).json()
    assert details["call_details"]["status"] == "completed"

    task_page = f"/dags/{DAG_ID}/runs/{run['dag_run_id']}/tasks"
    page.goto(f"{task_page}/queue_call/rendered_templates")
    expect(page.get_by_text('"Ann Example"', exact=True)).to_be_visible()  # JSON, not a Python repr
    expect(page.get_by_text('"Monday at 10am"', exact=True)).to_be_visible()
    shots(page, "rendered-templates")

    # An is_pci call's variables: registered with the secrets masker once rendered, so stored as ***.
    pci = airflow_ui.api("GET", f"{run_path}/queue_pci_call")["rendered_fields"]
    assert pci["variables"] == {"card_hint": "***"}
    page.goto(f"{task_page}/queue_pci_call/rendered_templates")
    expect(page.get_by_text('"***"', exact=True)).to_be_visible()
    expect(page.get_by_text("4111-UI-PCI-0042")).to_have_count(0)
    shots(page, "rendered-templates-pci")

    for task_id in TASKS:
        page.goto(f"{task_page}/{task_id}/details")
        expect(page.get_by_role("link", name=LINK_NAME)).to_have_attribute("href", pages[task_id])
        shots(page, f"{task_id}-details-link")

    page.goto(f"/dags/{DAG_ID}/tasks/queue_call")
    page.get_by_role("button", name="Documentation", exact=True).click()
    docs = page.get_by_role("dialog")
    summary = inspect.cleandoc(QueueCallOperator.__doc__ or "").splitlines()[0]
    expect(docs.get_by_text(summary)).to_be_visible()
    expect(docs.locator("pre")).to_have_count(0)  # prose, not a code block
    shots(page, "task-documentation")

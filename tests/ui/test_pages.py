"""The call page and the campaign page in Chromium, from a real run against the simulator.

The DAG (tests/ui/dags/fuse_ui_pages.py) runs with ``airflow dags test`` in the api-server's
AIRFLOW_HOME: a call busy once then answered, and a campaign of 12 rows of which 3 are never reached.
Fuse's result callbacks for the campaign's calls are then delivered to the api-server's real callback
route, with each call's final details as the simulator reports them, as Fuse would (this run's tasks
do not ask for callbacks): the campaign page draws its chart of calls ended from them.
docs/images/call-page.png (README) is a copy of the ``call-page-in-airflow-ui`` screenshot this test
leaves under .artifacts/ui/, docs/images/campaign-page.png of ``campaign-page``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_fuse.callback_token import CallbackPurpose, make_token
from airflow_provider_fuse.phone import mask_phone
from airflow_provider_fuse.plugins import task_page_path
from airflow_provider_fuse.testing import FuseSimulator

from .conftest import CALLBACK_SECRET, PAGES_CONN_ID, AirflowUI, Shots
from .dags.fuse_ui_pages import CALL_NUMBER, CAMPAIGN_NUMBERS

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.ui, pytest.mark.timeout(900)]

DAG_FILE = Path(__file__).parent / "dags" / "fuse_ui_pages.py"
DAG_ID = "fuse_ui_pages"
#: The number as the page shows it: masked, as Fuse writes it (digits only, see the simulator).
SHOWN_NUMBER = mask_phone(CALL_NUMBER.lstrip("+"))
#: Campaign rows (0-based) that are never answered, or rejected.
NOT_REACHED = {2: "never", 7: "reject", 10: "never"}


def deliver_callbacks(airflow_ui: AirflowUI, simulator: FuseSimulator, run_id: str, calls: list[Any]) -> None:
    """POST each call's final details to the campaign task's callback address, as Fuse does."""
    purpose = CallbackPurpose(PAGES_CONN_ID, "1001", "2002", DAG_ID, run_id, "campaign", -1)
    url = f"{airflow_ui.url}/fuse/callbacks/{make_token(purpose, CALLBACK_SECRET)}"
    for call_id, *_ in calls:
        status = requests.get(
            f"{simulator.url}/outbound/{call_id}", auth=(simulator.login, simulator.password), timeout=30
        )
        status.raise_for_status()
        answer = requests.post(url, json={"call_id": call_id, **status.json()}, timeout=60)
        assert answer.json() == {"status": "recorded"}, answer.text


def test_call_and_campaign_pages_from_a_real_run(
    page: Page, airflow_ui: AirflowUI, simulator: FuseSimulator, shots: Shots
) -> None:
    from playwright.sync_api import expect

    sandbox = airflow_ui.sandbox
    shutil.copy(DAG_FILE, sandbox.dags_folder)
    simulator.script(CALL_NUMBER, "busy:1")
    for row, outcome in NOT_REACHED.items():
        simulator.script(CAMPAIGN_NUMBERS[row], outcome)
    env = {**simulator.connection_env(PAGES_CONN_ID), "AIRFLOW__API__BASE_URL": airflow_ui.url}
    result = sandbox.dags_test(DAG_ID, env=env, timeout=300)
    assert result.ok, result.output[-4000:]
    (run,) = airflow_ui.api("GET", f"/dags/{DAG_ID}/dagRuns")["dag_runs"]
    run_id = run["dag_run_id"]
    campaign = sandbox.xcom(DAG_ID, "campaign")
    not_reached = [call for call in campaign["calls"] if call[3] != "completed"]
    assert sorted(call[1] for call in not_reached) == [row + 1 for row in NOT_REACHED]  # rows count from 1
    deliver_callbacks(airflow_ui, simulator, run_id, campaign["calls"])

    # The extra links lead to the pages, on the api-server ([api] base_url).
    pages = {
        task: f"{airflow_ui.url}/{task_page_path(DAG_ID, run_id, task, -1)}" for task in ("call", "campaign")
    }
    links_path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances"
    assert airflow_ui.api("GET", f"{links_path}/call/links")["extra_links"] == {
        "Fuse call status": pages["call"]
    }
    assert airflow_ui.api("GET", f"{links_path}/campaign/links")["extra_links"] == {
        "Fuse campaign": pages["campaign"]
    }

    call_page = page.goto(pages["call"])
    assert call_page is not None and call_page.status == 200
    assert "default-src 'none'" in call_page.headers["content-security-policy"]
    expect(page.get_by_role("heading", name="Fuse call")).to_be_visible()
    facts = page.locator("dl")
    expect(facts).to_contain_text(SHOWN_NUMBER)
    expect(facts).to_contain_text("completed")
    expect(facts).to_contain_text("2 of 2")
    expect(page.locator("ol.timeline li").first).to_contain_text("Queued")
    expect(page.locator("ol.timeline li").last).to_contain_text("Ended: completed")
    assert CALL_NUMBER.lstrip("+") not in page.content()
    shots(page, "call-page")

    page.goto(pages["campaign"])
    expect(page.get_by_role("heading", name="Fuse campaign")).to_be_visible()
    totals = page.locator("table").first
    expect(totals).to_contain_text("completed")
    expect(totals.locator("tbody tr")).to_have_count(len({call[3] for call in campaign["calls"]}))
    chart = page.locator("svg[role=img]")
    expect(chart).to_have_attribute(
        "aria-label", re.compile(rf"^{len(campaign['calls'])} calls ended between ")
    )
    rows = page.locator("table").last.locator("tbody tr")
    expect(rows).to_have_count(len(not_reached))
    for call in not_reached:
        expect(page.locator("table").last).to_contain_text(str(call[0]))
    for number in CAMPAIGN_NUMBERS:
        assert number.lstrip("+") not in page.content()
    shots(page, "campaign-page")

    # The same page as the task instance's "Fuse" tab in Airflow's UI (the plugin's external view).
    page.goto(f"/dags/{DAG_ID}/runs/{run_id}/tasks/call/plugin/fuse")
    framed = page.frame_locator("iframe")
    expect(framed.locator("dl")).to_contain_text(SHOWN_NUMBER, timeout=30_000)
    shots(page, "call-page-in-airflow-ui")

"""The campaign example under a real `airflow dags test` (deferred trigger included) against the simulator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_fuse import protocol
from airflow_provider_fuse.testing import FuseSimulator
from airflow_provider_fuse.testing.airflow_sandbox import AirflowSandbox, DagTestResult

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "fuse_reminder_campaign"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[AirflowSandbox]:
    box = AirflowSandbox([ROOT / "example_dags"])
    box.migrate()
    yield box
    box.cleanup()


def run(sandbox: AirflowSandbox, sim: FuseSimulator, **conf: Any) -> DagTestResult:
    env = {**sim.connection_env(), "FUSE_EXAMPLE_POLL_INTERVAL": "0.5"}
    return sandbox.dags_test(DAG_ID, conf=conf or None, env=env, timeout=240)


def test_example_reminder_campaign_queues_in_bulk_and_reports_who_was_reached(
    sandbox: AirflowSandbox,
) -> None:
    with FuseSimulator(speed=600) as sim:
        sim.script("+16175550132", "never")  # Bob never answers, both attempts
        sim.script("+14155550136", "busy:1")  # Frank is busy once, then answers
        result = run(sandbox, sim)

    assert result.ok, result.output[-4000:]
    summary = sandbox.xcom(DAG_ID, "call_patients")
    assert summary["totals"] == {"completed": 5, "failed": 1}
    assert summary["finished"] is True and summary["rows"] == 6 and summary["skipped"] == []
    assert [call[1] for call in summary["calls"]] == [1, 2, 3, 4, 5, 6]
    assert sandbox.xcom(DAG_ID, "report") == {
        "reached": ["Ann", "Carla", "Dev", "Eve", "Frank"],
        "not_reached": ["Bob (failed)"],
    }

    (upload,) = sim.requests("bulk_queue")  # six calls, one request
    assert upload.processed and len(upload.call_ids) == 6 and sim.requests("queue") == []
    assert upload.form[protocol.BULK_CSV_FIELD].splitlines()[1] == (
        "tel:+16175550131;ani=+18009957586,Ann,Tuesday at 9:00"
    )
    assert "Reached: Ann, Carla, Dev, Eve, Frank." in result.output
    assert "+16175550131" not in result.output and "6175550131" not in result.output


def test_example_with_calling_hours_uploads_once_per_time_zone(sandbox: AirflowSandbox) -> None:
    # Hours around "now" that are open in Boston, Chicago and San Francisco alike and close at
    # least nine hours later, so that the simulator (whose clock runs ahead) finds them open.
    pacific = datetime.now(ZoneInfo("America/Los_Angeles"))
    hours = f"{pacific - timedelta(hours=1):%H:%M}-{pacific + timedelta(hours=12):%H:%M}"
    with FuseSimulator(speed=600) as sim:
        result = run(sandbox, sim, calling_hours=hours, window_hours=24)

    assert result.ok, result.output[-4000:]
    assert sandbox.xcom(DAG_ID, "call_patients")["totals"] == {"completed": 6}
    uploads = sim.requests("bulk_queue")
    assert [len(upload.call_ids) for upload in uploads] == [3, 1, 2]  # Eastern, Central, Pacific
    assert all(upload.processed for upload in uploads)
    ends = [int(upload.form[protocol.END_TIMESTAMP]) for upload in uploads]
    assert ends[1] - ends[0] == 3600 and ends[2] - ends[0] == 3 * 3600  # each zone's own close
    assert result.output.count("Calling hours:") == 3

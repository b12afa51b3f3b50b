"""Real `airflow dags test` runs (deferred triggers included) against a live FuseSimulator."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_fuse.testing import FuseSimulator
from airflow_provider_fuse.testing.airflow_sandbox import AirflowSandbox, DagTestResult

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HAS_TASK_STATE_STORE = tuple(int(p) for p in version("apache-airflow-core").split(".")[:2]) >= (3, 3)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[AirflowSandbox]:
    box = AirflowSandbox([ROOT / "example_dags", Path(__file__).parent / "dags"])
    box.migrate()
    yield box
    box.cleanup()


def latest_run_id(sandbox: AirflowSandbox, dag_id: str) -> str:
    with sqlite3.connect(sandbox.home / "airflow.db") as db:
        (run_id,) = db.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()
    return str(run_id)


def run(sandbox: AirflowSandbox, sim: FuseSimulator, dag_id: str, **conf: Any) -> DagTestResult:
    env = {**sim.connection_env(), "FUSE_EXAMPLE_POLL_INTERVAL": "0.5"}
    return sandbox.dags_test(dag_id, conf=conf or None, env=env, timeout=240)


def test_example_appointment_reminder_completes_deferred(sandbox: AirflowSandbox, sim: FuseSimulator) -> None:
    result = run(sandbox, sim, "fuse_appointment_reminder")
    assert result.ok, result.output[-4000:]
    details = sandbox.xcom("fuse_appointment_reminder", "remind_patient")
    assert details["status"] == "completed"
    assert details["phone_number"] == "16***123"
    assert sandbox.xcom("fuse_appointment_reminder", "remind_patient", key="call_id") == details["call_id"]
    (queued,) = sim.requests("queue")
    assert queued.form["phone_number"] == "tel:+16175550123;ani=+18009957586"
    assert '"name":"John Doe"' in queued.form["call_parameters"]
    assert "+16175550123" not in result.output


def test_example_call_then_sensor_in_reschedule_mode(sandbox: AirflowSandbox, sim: FuseSimulator) -> None:
    result = run(sandbox, sim, "fuse_call_then_sensor")
    assert result.ok, result.output[-4000:]
    assert sandbox.xcom("fuse_call_then_sensor", "wait_for_call")["status"] == "completed"
    assert len(sim.requests("queue")) == 1


@pytest.mark.parametrize("dag_id", ["fuse_e2e_sync", "fuse_e2e_deferred"])
def test_a_call_nobody_answers_fails_with_its_events(
    sandbox: AirflowSandbox, sim: FuseSimulator, dag_id: str
) -> None:
    sim.script("+16175550177", "never")
    result = run(sandbox, sim, dag_id, phone="+16175550177", max_attempts=2, reattempt_wait=60)
    assert result.task_states == {"call": "failed"}
    assert "FuseCallFailed" in result.output and "'failed' after 2 of 2 attempt(s)" in result.output
    assert "last events:" in result.output
    assert len(sim.requests("queue")) == 1


def test_the_deadline_fails_the_task_and_leaves_the_call_alone(
    sandbox: AirflowSandbox, sim: FuseSimulator
) -> None:
    in_three_days = (datetime.now(timezone.utc) + timedelta(days=3)).isoformat()
    result = run(sandbox, sim, "fuse_e2e_short_deadline", start=in_three_days)
    assert result.task_states == {"call": "failed"}
    assert "FuseWaitTimeout" in result.output and "NOT cancelled" in result.output
    assert sim.requests("cancel") == []


def test_a_retried_task_reattaches_instead_of_calling_again(
    sandbox: AirflowSandbox, sim: FuseSimulator
) -> None:
    result = run(sandbox, sim, "fuse_e2e_crash_retry")
    assert "simulated crash after queueing" in result.output
    if HAS_TASK_STATE_STORE:
        assert result.ok, result.output[-4000:]
        assert len(sim.requests("queue")) == 1
        assert "Resuming Fuse call" in result.output
    else:  # Airflow < 3.3 has no task state store: documented, and warned about in the log
        assert "no task state store" in result.output
        assert len(sim.requests("queue")) == 2


def test_the_sensor_in_every_mode(sandbox: AirflowSandbox, sim: FuseSimulator) -> None:
    result = run(sandbox, sim, "fuse_e2e_sensor_modes")
    assert result.ok, result.output[-4000:]
    for task in ("wait_poke", "wait_reschedule", "wait_deferrable"):
        assert sandbox.xcom("fuse_e2e_sensor_modes", task)["status"] == "completed"
    assert sandbox.xcom("fuse_e2e_sensor_modes", "call") == {"call_id": sim.requests("queue")[0].call_ids[0]}


def test_dynamic_task_mapping_over_an_xcomarg(sandbox: AirflowSandbox, sim: FuseSimulator) -> None:
    result = run(sandbox, sim, "fuse_e2e_mapped")
    assert result.ok, result.output[-4000:]
    assert {k: v for k, v in result.task_states.items() if k.startswith("call")} == {
        "call[0]": "success",
        "call[1]": "success",
        "call[2]": "success",
    }
    sent = sorted(entry.form["phone_number"] for entry in sim.requests("queue"))
    assert sent == ["tel:+16175550111", "tel:+16175550112", "tel:+16175550113;postd=12#"]
    assert sandbox.xcom("fuse_e2e_mapped", "call", map_index=2)["status"] == "completed"


def test_example_on_failure_call_phones_the_on_call_number_once(
    sandbox: AirflowSandbox, sim: FuseSimulator
) -> None:
    result = run(sandbox, sim, "fuse_on_failure_call")
    assert result.task_states == {"load_warehouse": "failed"}
    assert "warehouse load failed" in result.output
    (page,) = sim.requests("queue")
    assert page.form["phone_number"] == "tel:+16175550199;ani=+18009957586"
    assert page.form["max_attempts"] == "3"
    variables = json.loads(page.form["call_parameters"])
    # Airflow 3.1 gives task failure callbacks no `exception` in their context.
    error = "warehouse load failed: disk full" if HAS_TASK_STATE_STORE else "unknown"
    run_id = latest_run_id(sandbox, "fuse_on_failure_call")
    assert run_id.startswith("manual__")
    assert variables == {
        "dag": "fuse_on_failure_call",
        "task": "load_warehouse",
        "run": run_id,
        "error": error,
    }
    assert "+16175550199" not in result.output


def test_example_appointment_reminder_within_calling_hours(
    sandbox: AirflowSandbox, sim: FuseSimulator
) -> None:
    """The DAG's window runs four hours from the run; the patient's hours close after three of them."""
    began = datetime.now(timezone.utc)
    boston = began.astimezone(ZoneInfo("America/New_York")).replace(second=0, microsecond=0)
    opens, closes = boston - timedelta(hours=1), boston + timedelta(hours=3)
    result = run(sandbox, sim, "fuse_appointment_reminder", calling_hours=f"{opens:%H:%M}-{closes:%H:%M}")
    (queued,) = sim.requests("queue")
    start, end = int(queued.form["start_timestamp"]), int(queued.form["end_timestamp"])
    assert end == closes.timestamp(), "the dialing window ends when the patient's calling hours close"
    assert began.timestamp() - 1 <= start <= datetime.now(timezone.utc).timestamp(), (
        "open now: start at the run"
    )
    assert result.ok, result.output[-4000:]

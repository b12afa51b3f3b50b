"""Issue 12, item 7 on a real Airflow: a cleared call task calls again, unless its call still rings.

Each DAG runs with ``airflow dags test``; its ``call`` task instance is then cleared the way the REST
API's clearTaskInstances does it (``dag.clear(task_ids=..., run_id=...)``, which runs Airflow's
``clear_task_instances``), and run again in the same DAG run with ``airflow tasks test``. Fuse is
the simulator: its ledger counts the calls queued. The keys and their expiry are read back from
the metadata database's ``task_state_store`` table.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_fuse.resume import CALL_ID_KEY
from airflow_provider_fuse.testing import FuseSimulator
from airflow_provider_fuse.testing.airflow_sandbox import AirflowSandbox

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        tuple(int(p) for p in version("apache-airflow-core").split(".")[:2]) < (3, 3),
        reason="the task state store arrived in Airflow 3.3",
    ),
]

#: What the REST API's clearTaskInstances does for one task of one run.
CLEAR = """
import sys
from airflow.models.serialized_dag import SerializedDagModel

SerializedDagModel.get_dag(sys.argv[1]).clear(task_ids=["call"], run_id=sys.argv[2])
"""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[AirflowSandbox]:
    box = AirflowSandbox([Path(__file__).parent / "clear_dags"])
    box.migrate()
    yield box
    box.cleanup()


def query(sandbox: AirflowSandbox, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(sandbox.home / "airflow.db") as db:
        return db.execute(sql, params).fetchall()


def airflow(sandbox: AirflowSandbox, sim: FuseSimulator, *args: str) -> str:
    done = subprocess.run(
        args if args[0] == sys.executable else [sandbox.airflow, *args],
        env=sandbox.env(sim.connection_env()),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-4000:]
    return done.stdout


def run_clear_and_run_again(sandbox: AirflowSandbox, sim: FuseSimulator, dag_id: str, **conf: Any) -> str:
    result = sandbox.dags_test(dag_id, conf=conf or None, env=sim.connection_env(), timeout=240)
    assert result.ok, result.output[-4000:]
    ((run_id, max_tries),) = query(
        sandbox, "SELECT run_id, max_tries FROM task_instance WHERE dag_id = ? AND task_id = 'call'", dag_id
    )
    airflow(sandbox, sim, sys.executable, "-c", CLEAR, dag_id, run_id)
    ((cleared_max_tries,),) = query(sandbox, "SELECT max_tries FROM task_instance WHERE dag_id = ?", dag_id)
    assert cleared_max_tries > max_tries, "Airflow's clear raises max_tries: the signal this provider reads"
    return airflow(sandbox, sim, "tasks", "test", dag_id, "call", run_id)


def stored(sandbox: AirflowSandbox, dag_id: str) -> tuple[dict[str, Any], datetime]:
    ((value, expires_at),) = query(
        sandbox,
        "SELECT value, expires_at FROM task_state_store WHERE dag_id = ? AND key = ?",
        dag_id,
        CALL_ID_KEY,
    )
    return json.loads(value), datetime.fromisoformat(expires_at).replace(tzinfo=timezone.utc)


def test_a_cleared_task_whose_call_ended_calls_again_and_then_resumes_the_new_call(
    sandbox: AirflowSandbox, sim: FuseSimulator
) -> None:
    output = run_clear_and_run_again(sandbox, sim, "fuse_clear_ended")
    first, second = (entry.call_ids[0] for entry in sim.requests("queue"))
    assert f"cleared since Fuse call {first}" in output and "calls again" in output
    assert stored(sandbox, "fuse_clear_ended")[0]["call_id"] == second
    ((run_id,),) = query(sandbox, "SELECT run_id FROM dag_run WHERE dag_id = 'fuse_clear_ended'")
    again = airflow(sandbox, sim, "tasks", "test", "fuse_clear_ended", "call", run_id)  # not cleared
    assert f"Resuming Fuse call {second}" in again
    assert len(sim.requests("queue")) == 2


def test_a_task_cleared_while_its_call_is_in_progress_reattaches(
    sandbox: AirflowSandbox, sim: FuseSimulator
) -> None:
    in_three_days = (datetime.now(timezone.utc) + timedelta(days=3)).isoformat()
    output = run_clear_and_run_again(sandbox, sim, "fuse_clear_pending", start=in_three_days)
    (queued,) = sim.requests("queue")
    assert f"cleared while Fuse call {queued.call_ids[0]}" in output
    record, expires_at = stored(sandbox, "fuse_clear_pending")
    assert record["call_id"] == queued.call_ids[0]
    # 40 retries a day apart: the keys outlive them (the default retention is 30 days).
    assert expires_at - datetime.now(timezone.utc) > timedelta(days=40)

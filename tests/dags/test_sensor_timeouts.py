"""A timed-out FuseCallSensor under the real `airflow dags test`: failed without a retry, or skipped."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_provider_fuse.testing import FuseSimulator
from airflow_provider_fuse.testing.airflow_sandbox import AirflowSandbox
from tests.dags.dags.fuse_sensor_timeout_dags import MODES

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sandbox() -> Iterator[AirflowSandbox]:
    box = AirflowSandbox([Path(__file__).parent / "dags"])
    box.migrate()
    yield box
    box.cleanup()


def test_a_timed_out_sensor_fails_without_retrying_or_is_skipped_in_every_mode(
    sandbox: AirflowSandbox, sim: FuseSimulator
) -> None:
    in_three_days = (datetime.now(timezone.utc) + timedelta(days=3)).isoformat()
    result = sandbox.dags_test(
        "fuse_e2e_sensor_timeouts", conf={"start": in_three_days}, env=sim.connection_env(), timeout=240
    )
    expected = {"call": "success"}
    for name in MODES:
        expected |= {f"{name}_fails": "failed", f"{name}_skips": "skipped"}
    assert result.task_states == expected, result.output[-4000:]
    assert "AirflowSensorTimeout" in result.output
    assert "FuseWaitTimeout" not in result.output
    with sqlite3.connect(sandbox.home / "airflow.db") as db:
        tries = dict(
            db.execute(
                "SELECT task_id, try_number FROM task_instance WHERE dag_id = ?",
                ("fuse_e2e_sensor_timeouts",),
            ).fetchall()
        )
    assert {name: tries[f"{name}_fails"] for name in MODES} == dict.fromkeys(MODES, 1), "no retry"

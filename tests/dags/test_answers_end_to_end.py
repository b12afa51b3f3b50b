"""Fuse's undocumented answers under a real `airflow dags test` against the simulator."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from airflow_provider_fuse import protocol
from airflow_provider_fuse.testing import FuseSimulator
from airflow_provider_fuse.testing.airflow_sandbox import AirflowSandbox, DagTestResult

pytestmark = pytest.mark.e2e

HAS_TASK_STATE_STORE = tuple(int(p) for p in version("apache-airflow-core").split(".")[:2]) >= (3, 3)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[AirflowSandbox]:
    box = AirflowSandbox([Path(__file__).parent / "answers_dags"])
    box.migrate()
    yield box
    box.cleanup()


def run(sandbox: AirflowSandbox, sim: FuseSimulator, dag_id: str) -> DagTestResult:
    return sandbox.dags_test(dag_id, env=sim.connection_env(), timeout=240)


def test_each_variables_format_reaches_fuse(sandbox: AirflowSandbox) -> None:
    """One run, one task per format, each through its own connection to a simulator reading that format."""
    with contextlib.ExitStack() as stack:
        sims = {
            name: stack.enter_context(FuseSimulator(variables_format=name, variables_field="vars"))
            for name in protocol.VARIABLES_FORMATS
        }
        env = {k: v for name, sim in sims.items() for k, v in sim.connection_env(f"fuse_{name}").items()}
        result = sandbox.dags_test("fuse_answers_formats", env=env, timeout=240)
    assert result.ok, result.output[-4000:]
    for name, sim in sims.items():
        (queued,) = sim.requests("queue")
        variables = sim.variables(queued.call_ids[0])
        assert variables["name"] == "Ann Lee" and variables["slot"] == "Tue 9:00 & 9:30", name
        assert variables["run"].startswith("manual__"), name
        assert sandbox.xcom("fuse_answers_formats", f"call_{name}")["status"] == "completed"


def test_a_bulk_answer_without_ids_is_untracked_and_a_retry_uploads_nothing(sandbox: AirflowSandbox) -> None:
    with FuseSimulator(bulk_answer="success_only") as sim:
        result = run(sandbox, sim, "fuse_answers_campaign_retry")
    assert "simulated crash after uploading" in result.output
    assert sim.requests("status") == []
    if not HAS_TASK_STATE_STORE:  # Airflow < 3.3: no memory across tries, documented and warned about
        assert "no task state store" in result.output
        return
    assert result.ok, result.output[-4000:]
    assert [len(upload.call_ids) for upload in sim.requests("bulk_queue")] == [2, 1]  # once each
    summary = sandbox.xcom("fuse_answers_campaign_retry", "campaign")
    assert summary["untracked"] == 3 and summary["totals"] == {"untracked": 3}
    assert [call[0] for call in summary["calls"]] == [None, None, None]
    assert "were queued by an earlier try and are not uploaded again" in result.output
    assert "Fuse queued 3 call(s) without answering their ids" in result.output
    assert "6175550161" not in result.output


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("no_id", "names no call_id and has no Link header; the call was probably queued"),
        ("xml", "'application/xml; charset=utf-8', not JSON"),
    ],
)
def test_a_queue_answer_without_id_or_in_xml_fails_the_task_saying_probably_queued(
    sandbox: AirflowSandbox, fault: str, says: str
) -> None:
    with FuseSimulator() as sim:
        sim.faults.inject("queue", fault)
        result = run(sandbox, sim, "fuse_answers_single")
    assert result.task_states == {"call": "failed"}
    assert "FuseResponseError" in result.output and says in result.output
    assert "probably queued" in result.output
    (queued,) = sim.requests("queue")
    assert queued.processed and sim.requests("status") == []
    assert "6175550160" not in result.output

"""Issue 12, item 6: one failure handled by two processes queues one call, not two.

The task runner runs a task's ``on_failure_callback``; when that process dies before reporting, the
scheduler's heartbeat timeout has the dag-processor run the callback again for the same try. Each
process used to remember only what it had sent itself, so the on-call engineer was rung twice.

The notifier now also remembers in an Airflow Variable (Variables work in the worker and in the
dag-processor; the task state store does not). The Variable backend is faked at the Task SDK
boundary (``SUPERVISOR_COMMS``, see ``sdk_boundary``), backed by a file that real, separate Python
processes share; Fuse is the simulator, whose ledger counts the calls queued.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests_mock as rm

from airflow_provider_fuse import resume
from airflow_provider_fuse.hooks.fuse import FuseHook
from airflow_provider_fuse.notifications.fuse import FuseCallNotifier
from airflow_provider_fuse.testing import FuseSimulator
from tests.attack.sdk_boundary import FileVariables, install
from tests.conftest import FUSE_URL
from tests.support import logged

ROOT = Path(__file__).resolve().parents[2]
NUMBER = "+16175551234"

#: One process handling one failure event: the task runner, or the dag-processor after it.
CHILD = """
import sys
from pathlib import Path
from types import SimpleNamespace

from airflow.sdk import DAG
from airflow.sdk.execution_time import task_runner

from airflow_provider_fuse.notifications.fuse import FuseCallNotifier
from tests.attack.sdk_boundary import FileVariables

task_runner.SUPERVISOR_COMMS = FileVariables(Path(sys.argv[1]))
ti = SimpleNamespace(dag_id="nightly", run_id="scheduled__1", task_id="load", map_index=-1, try_number=1)
notifier = FuseCallNotifier(application_id=11, deployment_id=22, phone_number=sys.argv[2])
notifier({"ti": ti, "run_id": "scheduled__1", "dag": DAG("nightly", schedule=None)})
"""


@pytest.fixture(autouse=True)
def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resume, "_process_memory", {})


def another_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a second process starts with: none of this one's memory."""
    monkeypatch.setattr(resume, "_process_memory", {})


def failure(try_number: int = 1, task_id: str = "load") -> dict[str, Any]:
    from types import SimpleNamespace

    from airflow.sdk import DAG

    ti = SimpleNamespace(
        dag_id="nightly", run_id="scheduled__1", task_id=task_id, map_index=-1, try_number=try_number
    )
    return {"ti": ti, "run_id": "scheduled__1", "dag": DAG("nightly", schedule=None)}


def notifier(number: str = NUMBER) -> FuseCallNotifier:
    return FuseCallNotifier(application_id=11, deployment_id=22, phone_number=number)


def test_the_task_runner_then_the_dag_processor_queue_one_call(sim: FuseSimulator, tmp_path: Path) -> None:
    variables = tmp_path / "variables.json"
    for process in ("task runner", "dag-processor"):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(variables), NUMBER],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{process}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    assert len(sim.requests("queue")) == 1, "two processes handling one failure rang the person twice"
    assert "already placed for this failure" in done.stdout + done.stderr


def test_two_processes_share_the_memory_through_an_airflow_variable(
    sim: FuseSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    comms = install(monkeypatch, FileVariables(tmp_path / "variables.json"))
    notifier()(failure())
    another_process(monkeypatch)
    notifier()(failure())
    assert len(sim.requests("queue")) == 1
    (name,) = comms.variables
    stored = json.loads(comms.variables[name])
    assert name.startswith("fuse_notifier_")  # documented: how a person finds them
    assert stored["memory"][resume.CALL_ID_KEY] == sim.requests("queue")[0].call_ids[0]
    assert {k: stored[k] for k in ("dag_id", "run_id", "task_id", "try_number")} == {
        "dag_id": "nightly",
        "run_id": "scheduled__1",
        "task_id": "load",
        "try_number": 1,
    }
    text = name + comms.variables[name]
    assert "6175551234" not in text and "+16***234" in text  # the number only masked


def test_a_request_whose_outcome_is_unknown_is_not_sent_again_by_the_other_process(
    sim: FuseSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch, FileVariables(tmp_path / "variables.json"))
    sim.faults.inject("queue", "drop", count=1)  # queued, but the answer is lost
    notifier()(failure())
    another_process(monkeypatch)
    notifier()(failure())
    assert len(sim.requests("queue")) == 1


def test_a_request_fuse_refused_may_be_sent_by_the_other_process(
    sim: FuseSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    comms = install(monkeypatch, FileVariables(tmp_path / "variables.json"))
    tries = FuseHook().settings.retry_limit + 1
    sim.faults.inject("queue", "429", count=tries, retry_after=0)  # refused on every try of the hook
    notifier()(failure())
    assert comms.variables == {}, "a request that provably queued nothing leaves no marker"
    another_process(monkeypatch)
    notifier()(failure())
    assert sum(entry.processed for entry in sim.requests("queue")) == 1


def test_two_notifiers_on_one_failure_each_call_their_own_person(
    sim: FuseSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    comms = install(monkeypatch, FileVariables(tmp_path / "variables.json"))
    for number in (NUMBER, "+16175559876"):
        notifier(number)(failure())
    assert len(sim.requests("queue")) == 2
    assert len(comms.variables) == 2


def test_another_try_of_the_task_is_another_failure(
    sim: FuseSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch, FileVariables(tmp_path / "variables.json"))
    notifier()(failure(try_number=1))
    another_process(monkeypatch)
    notifier()(failure(try_number=2))
    assert len(sim.requests("queue")) == 2


def test_the_variable_name_cannot_be_used_to_test_guesses_of_the_number(
    fuse_conn: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keyed with the developer key: the same failure and number give another name under another key."""
    names = []
    for key in ("dk-SECRET-4242", "dk-OTHER-0001"):
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json.dumps({**fuse_conn, "password": key}))
        comms = install(monkeypatch, FileVariables(tmp_path / f"{key}.json"))
        another_process(monkeypatch)
        with rm.Mocker() as m:
            m.post(f"{FUSE_URL}/apps/11/22/queue", json={"call_id": 7})
            notifier()(failure())
        names += list(comms.variables)
    assert len(names) == len(set(names)) == 2


def test_when_variables_cannot_be_used_the_call_is_still_placed_and_the_log_says_so(
    sim: FuseSimulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    install(monkeypatch, FileVariables(tmp_path / "variables.json", down=True))
    notifier()(failure())
    assert len(sim.requests("queue")) == 1
    assert "could not be written" in logged(capsys, caplog)

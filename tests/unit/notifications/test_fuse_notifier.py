"""FuseCallNotifier: one call per failure event, context rendered, errors logged and swallowed."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import requests_mock as rm
from airflow.sdk import DAG

from airflow_provider_fuse import resume
from airflow_provider_fuse.notifications.fuse import FuseCallNotifier
from tests.conftest import FUSE_URL

QUEUE_URL = f"{FUSE_URL}/apps/11/22/queue"


@pytest.fixture(autouse=True)
def _setup(fuse_conn: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resume, "_process_memory", {})


def failure_context(try_number: int = 1) -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id="nightly_load", run_id="manual__1", task_id="load", map_index=-1, try_number=try_number
    )
    return {
        "ti": ti,
        "run_id": "manual__1",
        "dag": DAG("nightly_load", schedule=None),
        "exception": ValueError("disk full\nstack trace line"),
    }


def notifier(**kwargs: Any) -> FuseCallNotifier:
    return FuseCallNotifier(
        application_id=11,
        deployment_id=22,
        phone_number="+16175551234",
        variables={
            "dag": "{{ dag.dag_id }}",
            "task": "{{ ti.task_id }}",
            "run": "{{ run_id }}",
            "error": "{{ (exception | string).splitlines()[0] }}",
        },
        **kwargs,
    )


def sent_variables(m: rm.Mocker) -> dict[str, Any]:
    body = m.request_history[0].body.decode()
    raw = body.split('name="call_parameters"\r\n\r\n', 1)[1].split("\r\n", 1)[0]
    return json.loads(raw)


def test_queues_one_call_with_the_context_rendered_into_variables() -> None:
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 1})
        assert notifier()(failure_context()) is None
        assert m.call_count == 1
        assert sent_variables(m) == {
            "dag": "nightly_load",
            "task": "load",
            "run": "manual__1",
            "error": "disk full",
        }


def test_a_repeated_callback_for_the_same_try_does_not_call_twice() -> None:
    note = notifier()
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 1})
        note(failure_context())
        note(failure_context())
        note(failure_context(try_number=2))
    assert m.call_count == 2


def test_a_shared_notifier_renders_each_callback_afresh() -> None:
    note = notifier()
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 1})
        note(failure_context())
        other = failure_context()
        other["ti"].task_id = "report"
        note(other)
    assert [
        json.loads(r.body.decode().split('name="call_parameters"\r\n\r\n')[1].split("\r\n")[0])["task"]
        for r in m.request_history
    ] == ["load", "report"]


@pytest.mark.parametrize(
    "response", [{"status_code": 401, "json": {"error": "bad credentials"}}, {"exc": requests.ConnectTimeout}]
)
def test_fuse_errors_are_logged_and_swallowed(
    response: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with rm.Mocker() as m:
        m.post(QUEUE_URL, **response)
        notifier()(failure_context())
    out = capsys.readouterr().out
    assert "placed NO call" in out
    assert "+16175551234" not in out


def test_bad_input_is_logged_and_swallowed(capsys: pytest.CaptureFixture[str]) -> None:
    with rm.Mocker() as m:
        FuseCallNotifier(application_id=11, deployment_id=22, phone_number="12")(failure_context())
        assert m.call_count == 0
    assert "Invalid phone_number" in capsys.readouterr().out


def test_an_ambiguous_failure_is_not_retried_by_a_repeated_callback() -> None:
    note = notifier()
    with rm.Mocker() as m:
        m.post(QUEUE_URL, exc=requests.ReadTimeout)
        note(failure_context())
        note(failure_context())
    assert m.call_count == 1


def test_a_dag_run_that_fails_again_after_a_clear_calls_again() -> None:
    """DAG-level callbacks have no try number: the run's clear_number tells the failures apart."""

    def dag_failure(clear_number: int) -> dict[str, Any]:
        run = SimpleNamespace(run_id="manual__1", clear_number=clear_number)
        return {"dag_run": run, "run_id": "manual__1", "dag": DAG("nightly_load", schedule=None)}

    note = FuseCallNotifier(application_id=11, deployment_id=22, phone_number="+16175551234")
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 1})
        note(dag_failure(0))
        note(dag_failure(0))
        note(dag_failure(1))
    assert m.call_count == 2

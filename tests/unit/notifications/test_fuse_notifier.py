"""FuseCallNotifier: one call per failure event, context rendered, errors logged and swallowed."""

from __future__ import annotations

import asyncio
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
    assert ON_CALL not in out and ON_CALL[2:] not in out


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


# --- in the triggerer: a Deadline Alert's AsyncCallback --------------------------------------------


ON_CALL = "+16175550142"


def deadline_context(deadline_id: str = "0195-dl-1") -> dict[str, Any]:
    """What Airflow 3.3's scheduler hands a Deadline Alert callback: plain dicts (the DAG run as the REST
    API's DAGRunResponse), no task instance."""
    return {
        "dag_run": {"dag_id": "nightly_load", "dag_run_id": "scheduled__2026-01-02", "state": "running"},
        "deadline": {"id": deadline_id, "deadline_time": "2026-01-02T06:00:00+00:00"},
    }


def alert_kwargs() -> dict[str, Any]:
    return {
        "application_id": 11,
        "deployment_id": 22,
        "phone_number": ON_CALL,
        "variables": {"dag": "{{ dag_run.dag_id }}", "run": "{{ dag_run.dag_run_id }}"},
    }


async def run_as_the_triggerer(context: dict[str, Any], **kwargs: Any) -> Any:
    """What Airflow's triggerer does with ``AsyncCallback(FuseCallNotifier, kwargs=...)``."""
    try:
        from airflow.triggers.callback import CallbackTrigger
    except ImportError:  # Airflow 3.1
        from airflow.triggers.deadline import DeadlineCallbackTrigger as CallbackTrigger

    trigger = CallbackTrigger(
        "airflow_provider_fuse.notifications.fuse.FuseCallNotifier",
        {**alert_kwargs(), **kwargs, "context": context},
    )
    return [event.payload async for event in trigger.run()]


def test_a_deadline_alert_queues_the_call_from_the_triggerer_with_its_context_rendered() -> None:
    try:
        from airflow.sdk import AsyncCallback
    except ImportError:  # Airflow 3.1
        from airflow.sdk.definitions.deadline import AsyncCallback

    AsyncCallback(FuseCallNotifier, kwargs=alert_kwargs())  # Airflow accepts it as a triggerer callback
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 1})
        events = asyncio.run(run_as_the_triggerer(deadline_context()))
    assert [e["state"] for e in events] == ["running", "success"]
    assert m.call_count == 1
    assert sent_variables(m) == {"dag": "nightly_load", "run": "scheduled__2026-01-02"}


def test_a_missed_deadline_calls_once_even_when_its_callback_runs_again() -> None:
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 1})
        asyncio.run(run_as_the_triggerer(deadline_context()))
        asyncio.run(run_as_the_triggerer(deadline_context()))
        asyncio.run(run_as_the_triggerer(deadline_context("0195-dl-2")))
    assert m.call_count == 2, "one call per missed deadline"


@pytest.mark.parametrize(
    "kwargs", [{}, {"phone_number": "12"}, {"variables": {"x": "{{ dag_run.no_such_field.oops }}"}}]
)
def test_in_the_triggerer_failures_are_logged_never_raised(
    kwargs: dict[str, Any], capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Airflow logs a failing callback's kwargs (the phone number among them): nothing may fail."""
    with rm.Mocker() as m:
        m.post(QUEUE_URL, status_code=401, json={"error": "bad credentials"})
        events = asyncio.run(run_as_the_triggerer(deadline_context(), **kwargs))
    assert [e["state"] for e in events] == ["running", "success"]
    out = capsys.readouterr().out + caplog.text
    assert "placed NO call" in out
    assert ON_CALL not in out and ON_CALL[2:] not in out


def test_the_triggerer_never_waits_on_fuse_in_its_event_loop() -> None:
    """The request runs in a worker thread: the loop stays free for every other trigger meanwhile."""
    import threading

    loop_thread: list[int] = []
    request_threads: list[int] = []

    def answer(request: Any, context: Any) -> dict[str, Any]:
        request_threads.append(threading.get_ident())
        return {"call_id": 1}

    async def main() -> None:
        loop_thread.append(threading.get_ident())
        await run_as_the_triggerer(deadline_context())

    with rm.Mocker() as m:
        m.post(QUEUE_URL, json=answer)
        asyncio.run(main())
    assert len(request_threads) == 1 and request_threads[0] != loop_thread[0]


def test_fuse_conn_id_is_templated(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection named by the rendered template is the one the call goes through."""
    conn = {
        "conn_type": "fuse",
        "host": "https://fuse-eu.test/api",
        "login": "eu@example.com",
        "password": "k",
    }
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_EU", json.dumps(conn))
    with rm.Mocker() as m:
        m.post("https://fuse-eu.test/api/apps/11/22/queue", json={"call_id": 1})
        notifier(fuse_conn_id="fuse_{{ params.region }}")({**failure_context(), "params": {"region": "eu"}})
        assert m.call_count == 1

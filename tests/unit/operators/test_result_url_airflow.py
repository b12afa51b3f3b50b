"""result_url="airflow" on QueueCallOperator, QueueCallsOperator and FuseCallNotifier: the address is
built for the task instance before any request, and a missing setting sends nothing."""

from __future__ import annotations

import json
import re
import time
from types import SimpleNamespace
from typing import Any

import pytest
import requests_mock as rm
from aioresponses import aioresponses
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_fuse import callbacks, resume
from airflow_provider_fuse.callback_token import CallbackPurpose, verify_token
from airflow_provider_fuse.callbacks import CALLBACK_GRACE_SECONDS, HEAD_KEY, chunk_key
from airflow_provider_fuse.exceptions import FuseValidationError
from airflow_provider_fuse.notifications.fuse import FuseCallNotifier
from airflow_provider_fuse.operators.fuse import QueueCallOperator, QueueCallsOperator
from airflow_provider_fuse.triggers.fuse import FuseCallTrigger
from tests.conftest import FUSE_URL
from tests.support import FakeTI, context, logged

SECRET = "s" * 43
BASE_URL = "https://airflow.example.com"
QUEUE_URL = f"{FUSE_URL}/apps/11/22/queue"
BULK_URL = f"{FUSE_URL}/apps/11/22/bulk_queue"


@pytest.fixture(autouse=True)
def _settings(fuse_conn: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`fuse_default` with a callback_secret, and Airflow's [api] base_url."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_FUSE_DEFAULT", json.dumps({**fuse_conn, "extra": {"callback_secret": SECRET}})
    )
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    monkeypatch.setattr(resume, "_process_memory", {})


def sent_result_url(request: Any) -> str | None:
    """The result_url field of a multipart request Fuse received."""
    found = re.search(rb'name="result_url"\r\n\r\n([^\r]*)\r\n', request.body)
    return found.group(1).decode() if found else None


def purpose_of(url: str | None) -> CallbackPurpose | None:
    assert url is not None and url.startswith(f"{BASE_URL}/fuse/callbacks/"), url
    return verify_token(url.rsplit("/", 1)[1], SECRET)


def call_operator(**kwargs: Any) -> QueueCallOperator:
    return QueueCallOperator(
        task_id="call", application_id=11, deployment_id=22, phone_number="+16175551234", **kwargs
    )


def test_a_call_s_result_url_is_airflow_s_address_for_its_task_instance() -> None:
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 5})
        call_operator(result_url="airflow", wait_for_completion=False).execute(context())
    (queued,) = m.request_history
    ti = FakeTI()
    assert purpose_of(sent_result_url(queued)) == CallbackPurpose(
        "fuse_default", "11", "22", ti.dag_id, ti.run_id, ti.task_id, -1
    )


def test_a_result_url_of_its_own_is_sent_as_given() -> None:
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 5})
        call_operator(result_url="https://hooks.example.com/x", wait_for_completion=False).execute(context())
    assert sent_result_url(m.request_history[0]) == "https://hooks.example.com/x"


@pytest.mark.parametrize("missing", ["callback_secret", "base_url"])
def test_nothing_is_sent_when_the_address_cannot_be_built(
    missing: str, fuse_conn: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if missing == "callback_secret":
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json.dumps(fuse_conn))
        expected = "callback_secret"
    else:
        monkeypatch.delenv("AIRFLOW__API__BASE_URL")
        expected = r"\[api\] base_url is not set"
    rows = [{"phone_number": "+16175550100"}]
    with rm.Mocker() as m:
        with pytest.raises(FuseValidationError, match=expected):
            call_operator(result_url="airflow").execute(context())
        with pytest.raises(FuseValidationError, match=expected):
            QueueCallsOperator(
                task_id="campaign", application_id=11, deployment_id=22, calls=rows, result_url="airflow"
            ).execute(context())
    assert m.request_history == []


def test_every_upload_of_a_campaign_carries_the_address() -> None:
    rows = [{"phone_number": f"+161755501{n:02d}"} for n in range(3)]
    with rm.Mocker() as m:
        m.post(BULK_URL, [{"json": {"call_ids": [1, 2]}}, {"json": {"call_ids": [3]}}])
        QueueCallsOperator(
            task_id="campaign",
            application_id=11,
            deployment_id=22,
            calls=rows,
            chunk_size=2,
            result_url="airflow",
            wait_for_completion=False,
        ).execute(context())
    urls = {sent_result_url(request) for request in m.request_history}
    assert len(m.request_history) == 2 and len(urls) == 1
    assert purpose_of(urls.pop()) is not None


def test_a_deferred_call_with_callbacks_sends_no_status_request_and_tells_the_trigger() -> None:
    before = time.time()
    with rm.Mocker() as m, pytest.raises(TaskDeferred) as info:
        m.post(QUEUE_URL, json={"call_id": 5})
        call_operator(result_url="airflow", deferrable=True).execute(context())
    assert [r.method for r in m.request_history] == ["POST"], "no status request before deferring"
    trigger = info.value.trigger
    assert isinstance(trigger, FuseCallTrigger)
    # A call dialed now with one attempt: its window ends now, then the grace.
    assert before + CALLBACK_GRACE_SECONDS <= trigger.callbacks_until <= time.time() + CALLBACK_GRACE_SECONDS
    kwargs = trigger.serialize()[1]
    assert kwargs["callbacks_until"] == trigger.callbacks_until
    ti = FakeTI()
    assert kwargs["callbacks_ti"] == {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": -1,
    }


def test_a_deferred_call_without_callbacks_serializes_as_before() -> None:
    with rm.Mocker() as m, pytest.raises(TaskDeferred) as info:
        m.post(QUEUE_URL, json={"call_id": 5})
        m.get(f"{FUSE_URL}/outbound/5", json={"call_details": {"status": "queued", "events": []}})
        call_operator(deferrable=True).execute(context())
    assert not {"callbacks_until", "callbacks_ti"} & set(info.value.trigger.serialize()[1])


def test_the_worker_s_wait_ends_from_the_recorded_callback_without_a_status_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """deferrable=False: the record is read before any status request; the callback decides the task."""
    record = {
        HEAD_KEY: {"count": 1},
        chunk_key(0): [
            {
                "seq": 0,
                "received_at": "2026-11-30T12:00:00+00:00",
                "details": {"call_id": None, "status": "completed", "phone_number": "61***234", "events": []},
                "phone_digest": None,
            }
        ],
    }
    read: list[str] = []

    async def aget(ti: Any, key: str) -> Any:
        assert (ti.dag_id, ti.task_id) == (FakeTI.dag_id, FakeTI.task_id)
        read.append(key)
        return record.get(key)

    monkeypatch.setattr(callbacks, "_aget", aget)
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 5})
        result = call_operator(result_url="airflow", poll_interval=0.01).execute(context())
    assert result["status"] == "completed" and result["call_id"] == "5"
    assert [r.method for r in m.request_history] == ["POST"]
    assert read == [HEAD_KEY, chunk_key(0)]


def notifier(**kwargs: Any) -> FuseCallNotifier:
    return FuseCallNotifier(application_id=11, deployment_id=22, phone_number="+16175551234", **kwargs)


def test_the_notifier_sends_the_address_of_the_failed_task_instance() -> None:
    ti = SimpleNamespace(dag_id="nightly", run_id="manual__1", task_id="load", map_index=-1, try_number=1)
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 1})
        notifier(result_url="airflow")({"ti": ti, "run_id": "manual__1"})
    (queued,) = m.request_history
    assert purpose_of(sent_result_url(queued)) == CallbackPurpose(
        "fuse_default", "11", "22", "nightly", "manual__1", "load", -1
    )


def test_the_notifier_without_a_task_instance_places_no_call_and_says_why(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    dag_run = SimpleNamespace(dag_id="nightly", run_id="manual__1", clear_number=0)
    with rm.Mocker() as m:
        notifier(result_url="airflow")({"dag_run": dag_run, "run_id": "manual__1"})
    assert m.request_history == []
    assert "Only a task's calls can report to Airflow" in logged(capsys, caplog)


async def test_callbacks_naming_no_call_end_a_campaign_by_number_even_rows_queued_without_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fuse's documented call_details carry no id: each callback finds its call by the keyed digest
    of its number, tracked calls and rows of an upload Fuse answered without ids alike. Zero polls."""
    from airflow_provider_fuse.callback_token import phone_digest
    from airflow_provider_fuse.triggers.fuse import FuseCallsTrigger
    from tests.callback_support import recorded_callbacks
    from tests.support import serve_xcom

    numbers = ["+16175550100", "+16175550101", "+16175550102"]
    ctx = context()
    op = QueueCallsOperator(
        task_id="campaign",
        application_id=11,
        deployment_id=22,
        calls=[{"phone_number": n} for n in numbers],
        chunk_size=2,
        result_url="airflow",
        deferrable=True,
    )
    with rm.Mocker() as m, pytest.raises(TaskDeferred) as info:
        m.post(BULK_URL, [{"json": {"call_ids": [7, 8]}}, {"json": {"success": True}}])
        op.execute(ctx)
    trigger = info.value.trigger
    assert isinstance(trigger, FuseCallsTrigger) and trigger.callbacks_until is not None
    trigger.task_instance = ctx["ti"]
    serve_xcom(monkeypatch, ctx["ti"])
    outcomes = {numbers[0]: "completed", numbers[1]: "failed", numbers[2]: "completed"}
    entries = recorded_callbacks(
        [
            {"call_id": None, "status": status, "phone_number": "16***1xx", "attempts": 1, "events": []}
            for status in outcomes.values()
        ]
    )
    for seq, number in enumerate(outcomes):  # as the plugin records them: the digest of the number
        entries[chunk_key(0)][seq]["phone_digest"] = phone_digest(number, SECRET)

    async def aget(ti: Any, key: str) -> Any:
        return entries.get(key)

    monkeypatch.setattr(callbacks, "_aget", aget)
    with aioresponses() as polls:
        (event,) = [e.payload async for e in trigger.run()]
    assert polls.requests == {}
    assert (event["status"], event["requests"], event["callbacks"]) == ("done", 0, 3)
    result = op.execute_complete(ctx, event)
    assert [(c[0], c[1], c[3]) for c in result["calls"]] == [
        ("7", 1, "completed"),
        ("8", 2, "failed"),
        (None, 3, "completed"),
    ]
    assert result["untracked"] == 0 and result["totals"] == {"completed": 2, "failed": 1}


def test_the_worker_s_wait_asks_fuse_only_after_the_window_and_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """deferrable=False and no callback: no status request until the grace ends, then polling as usual."""
    from airflow_provider_fuse import waiting
    from tests.callback_support import FakeClock

    clock = FakeClock(time.time())
    monkeypatch.setattr(waiting, "time", clock)
    monkeypatch.setattr("airflow_provider_fuse.operators.fuse.time", clock)

    async def nothing(ti: Any, key: str) -> Any:
        return None

    monkeypatch.setattr(callbacks, "_aget", nothing)
    asked_at: list[float] = []

    def status(request: Any, context: Any) -> dict[str, Any]:
        asked_at.append(clock.now)
        return {"call_details": {"status": "completed", "attempts": "1", "events": []}}

    start = clock.now
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 5})
        m.get(f"{FUSE_URL}/outbound/5", json=status)
        result = call_operator(result_url="airflow", poll_interval=30).execute(context())
    assert result["status"] == "completed"
    assert asked_at == [start + CALLBACK_GRACE_SECONDS], "one status request, at the end of the grace"

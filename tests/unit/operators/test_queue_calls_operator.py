"""QueueCallsOperator against the simulator (its ledger proves what reached Fuse) and requests-mock."""

from __future__ import annotations

import asyncio
import inspect
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests_mock as rm
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_fuse import protocol
from airflow_provider_fuse.campaign import CampaignResult
from airflow_provider_fuse.exceptions import (
    FuseCallFailed,
    FuseConnectionError,
    FuseError,
    FuseInvalidRowsError,
    FuseRequestError,
    FuseValidationError,
    FuseWaitTimeout,
)
from airflow_provider_fuse.operators.fuse import QUEUED_XCOM_KEY, RESULT_XCOM_KEY, QueueCallsOperator
from airflow_provider_fuse.resume import CHUNK_KEY, CHUNK_SENT_KEY
from airflow_provider_fuse.testing import FuseSimulator
from airflow_provider_fuse.triggers.fuse import FuseCallsTrigger
from tests.conftest import FUSE_URL, HANG, within
from tests.support import FakeStore, context, logged, rendered, serve_xcom

BULK_URL = f"{FUSE_URL}/apps/11/22/bulk_queue"


def numbers(count: int, first: int = 100) -> list[dict[str, Any]]:
    return [{"phone_number": f"+1617555{n:04d}", "variables": {"n": n}} for n in range(first, first + count)]


def operator(calls: Any, **kwargs: Any) -> QueueCallsOperator:
    kwargs.setdefault("task_id", "campaign")
    kwargs.setdefault("application_id", 11)
    kwargs.setdefault("deployment_id", 22)
    kwargs.setdefault("poll_interval", 0.02)
    kwargs.setdefault("max_requests_per_second", 1000)
    kwargs.setdefault("timeout", 30)
    return QueueCallsOperator(calls=calls, **kwargs)


def uploaded(sim: FuseSimulator) -> list[str]:
    """Every destination that Fuse queued, in order (a duplicate means someone is called twice)."""
    return [
        destination
        for entry in sim.requests("bulk_queue")
        if entry.processed
        for destination, _ in protocol.parse_bulk_csv(entry.form[protocol.BULK_CSV_FIELD])
    ]


# --- input and validation ----------------------------------------------------------------------


#: QueueCallsOperator's parameters that say how to wait, retry or connect, not what to call.
NOT_CAMPAIGN_FIELDS = {
    "wait_for_completion",
    "deferrable",
    "poll_interval",
    "timeout",
    "max_requests_per_second",
    "reupload_unanswered",
}


def test_every_campaign_field_is_templated_and_renders_and_calls_render_as_json() -> None:
    parameters = set(inspect.signature(QueueCallsOperator.__init__).parameters) - {"self", "kwargs"}
    assert set(operator([]).template_fields) == parameters - NOT_CAMPAIGN_FIELDS
    values = {
        "application_id": 11,
        "deployment_id": 22,
        "calls": "/data/campaign.csv",
        "start_timestamp": "2026-12-01T09:00:00+00:00",
        "end_timestamp": "2026-12-01T12:00:00+00:00",
        "max_attempts": 3,
        "reattempt_wait": 600,
        "result_url": "https://example.com/fuse",
        "is_pci": True,
        "calling_hours": "09:00-20:00",
        "timezone": "America/New_York",
        "chunk_size": 500,
        "skip_invalid": True,
        "allow_duplicates": True,
        "min_completed_ratio": 0.8,
        "result_path": "s3://aws_default@results/2026-12-01.csv",
        "fuse_conn_id": "fuse_eu",
    }
    assert rendered(operator([]), values) == {name: str(value) for name, value in values.items()}
    op = operator([{"phone_number": "{{ v.phone }}", "variables": {"name": "{{ v.name }}"}}])
    op.render_template_fields({"v": {"phone": "+16175550101", "name": "Ann"}})
    assert op.calls == [{"phone_number": "+16175550101", "variables": {"name": "Ann"}}]  # rows too
    assert op.template_fields_renderers["calls"] == "json"


def test_every_shared_setting_reaches_every_bulk_upload(sim: FuseSimulator) -> None:
    start = int(time.time()) + 3600
    settings = {
        protocol.START_TIMESTAMP: start,
        protocol.END_TIMESTAMP: start + 7200,
        protocol.MAX_ATTEMPTS: 3,
        protocol.REATTEMPT_WAIT: 120,
        protocol.RESULT_URL: "http://127.0.0.1:9/fuse-results",  # loopback: plain http is allowed
        protocol.IS_PCI: True,
    }
    operator(numbers(3), chunk_size=2, wait_for_completion=False, **settings).execute(context(FakeStore()))
    uploads = sim.requests("bulk_queue")
    assert [len(upload.call_ids) for upload in uploads] == [2, 1]
    sent = {name: str(int(value) if isinstance(value, bool) else value) for name, value in settings.items()}
    for upload in uploads:
        assert {name: upload.form.get(name) for name in settings} == sent


def test_bad_rows_fail_the_task_before_any_request(sim: FuseSimulator) -> None:
    calls = [*numbers(3), {"phone_number": "555"}, {"phone_number": "+16175550101", "variables": "[1]"}]
    with pytest.raises(FuseInvalidRowsError, match="2 of 5 rows") as info:
        operator(calls).execute(context(FakeStore()))
    assert "row 4: Invalid phone_number" in str(info.value) and "row 5: Invalid variables" in str(info.value)
    assert sim.ledger == []


def test_skip_invalid_queues_the_valid_rows_and_lists_the_skipped_ones(sim: FuseSimulator) -> None:
    calls = [numbers(1)[0], {"phone_number": "555"}, numbers(1, first=200)[0]]
    result = operator(calls, skip_invalid=True).execute(context(FakeStore()))
    assert result["totals"] == {"completed": 2} and result["rows"] == 3
    assert [call[1] for call in result["calls"]] == [1, 3]
    ((row, field, message),) = result["skipped"]
    assert (row, field, result["skipped_count"]) == (2, "phone_number", 1)
    assert message.startswith("Invalid phone_number: ***.") and "E.164" in message
    assert uploaded(sim) == ["tel:+16175550100", "tel:+16175550200"]


def test_a_csv_file_is_read_from_its_absolute_path(sim: FuseSimulator, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text("phone_number,caller_id,name\n+16175550101,+18009957586,Ann\n+16175550102,,Bob\n")
    result = operator(str(path), wait_for_completion=False).execute(context(FakeStore()))
    assert [c[3] for c in result["calls"]] == ["queued", "queued"]
    assert result["calls"][0][2] == "+16***101"
    (upload,) = sim.requests("bulk_queue")
    assert upload.form[protocol.BULK_CSV_FIELD].splitlines() == [
        "destination,name",
        "tel:+16175550101;ani=+18009957586,Ann",
        "tel:+16175550102,Bob",
    ]


@pytest.mark.usefixtures("fuse_conn")
@pytest.mark.parametrize(
    ("calls", "complaint"),
    [("calls.csv", "absolute path"), ("/nonexistent/calls.csv", "cannot be read"), (42, "list of dicts")],
)
def test_a_campaign_that_cannot_be_read_fails_before_any_request(calls: Any, complaint: str) -> None:
    with rm.Mocker() as m, pytest.raises(FuseValidationError, match=complaint):
        operator(calls).execute(context())
    assert m.call_count == 0


@pytest.mark.usefixtures("fuse_conn")
def test_an_empty_campaign_succeeds_without_a_request() -> None:
    with rm.Mocker() as m:
        result = operator([]).execute(context())
    assert m.call_count == 0
    assert result["calls"] == [] and result["rows"] == 0 and result["completed_ratio"] == 1.0


# --- chunks, and retries between them ----------------------------------------------------------


def test_rows_go_out_in_chunks_and_the_result_follows_the_rows(sim: FuseSimulator) -> None:
    store = FakeStore()
    ctx = context(store)
    result = operator(numbers(25), chunk_size=10, poll_interval=0.1).execute(ctx)
    assert [len(entry.call_ids) for entry in sim.requests("bulk_queue")] == [10, 10, 5]
    assert result["totals"] == {"completed": 25} and result["finished"]
    assert [call[1] for call in result["calls"]] == list(range(1, 26))
    assert sorted(store.data) == [CHUNK_KEY.format(index=i) for i in range(3)]
    assert store.data[CHUNK_KEY.format(index=2)]["call_ids"] == [str(n) for n in range(21, 26)]
    assert ctx["ti"].xcom[QUEUED_XCOM_KEY]["chunks"] == 3
    assert ctx["ti"].xcom["campaign_chunk_2"] == [[21, 5]]
    assert ctx["ti"].xcom["campaign_chunk_2_rows"] == {
        "rows": [[21, 5]],
        "phones": ["+16***120", "+16***121", "+16***122", "+16***123", "+16***124"],
    }
    assert len(sim.requests("status")) <= 3 * 25


class DiesBeforeChunk(QueueCallsOperator):
    """A worker killed just before uploading chunk ``die_at`` (0-based) on its first try."""

    die_at = 2

    def _upload(self, hook: Any, plan: Any, chunk: Any, memory: Any) -> Any:
        if chunk.index == self.die_at and not getattr(self, "retried", False):
            raise RuntimeError("worker lost")
        return super()._upload(hook, plan, chunk, memory)


def test_a_retry_between_chunks_uploads_only_the_chunks_not_yet_queued(sim: FuseSimulator) -> None:
    store = FakeStore()
    op = DiesBeforeChunk(task_id="c", application_id=11, deployment_id=22, calls=numbers(25), chunk_size=10)
    op.poll_interval, op.max_requests_per_second = 0.02, 1000
    with pytest.raises(RuntimeError, match="worker lost"):
        op.execute(context(store))
    assert len(uploaded(sim)) == 20

    op.retried = True  # type: ignore[attr-defined]
    result = op.execute(context(store))
    assert result["totals"] == {"completed": 25}
    destinations = uploaded(sim)
    assert len(destinations) == len(set(destinations)) == 25  # nobody queued twice
    assert [len(e.call_ids) for e in sim.requests("bulk_queue")] == [10, 10, 5]


def test_an_unanswered_upload_is_not_sent_again_by_a_retry(sim: FuseSimulator) -> None:
    store = FakeStore()
    sim.faults.inject("bulk_queue", "429", count=1, retry_after=0)  # refused: the hook retries it
    sim.faults.inject("bulk_queue", "drop", count=1)  # chunk 1 queued, its answer lost
    with pytest.raises(FuseConnectionError, match="may have been queued"):
        operator(numbers(25), chunk_size=10).execute(context(store))
    assert CHUNK_SENT_KEY.format(index=0) in store.data and len(uploaded(sim)) == 10

    with pytest.raises(FuseError, match="may be queued or placed already") as info:
        operator(numbers(25), chunk_size=10).execute(context(store))
    assert "the 10 calls of chunk 1 of 3" in str(info.value) and "reupload_unanswered=True" in str(info.value)
    assert [e.fault for e in sim.requests("bulk_queue")] == ["429", "drop"]  # the retry sent nothing
    assert len(uploaded(sim)) == 10

    result = operator(numbers(25), chunk_size=10, reupload_unanswered=True).execute(context(store))
    assert result["totals"] == {"completed": 25}
    assert len(uploaded(sim)) == 35  # chunk 1 twice, as asked; chunks 2 and 3 once


@pytest.mark.usefixtures("fuse_conn")
def test_an_upload_fuse_refused_is_sent_again_by_a_retry(capsys: pytest.CaptureFixture[str]) -> None:
    store = FakeStore()
    first = {"json": {"call_ids": list(range(1, 11))}}
    with rm.Mocker() as m:
        m.post(BULK_URL, [first, {"status_code": 400, "json": {"error": "bad csv"}}])
        with pytest.raises(FuseRequestError, match="bad csv"):
            operator(numbers(15), chunk_size=10, wait_for_completion=False).execute(context(store))
        assert sorted(store.data) == [CHUNK_KEY.format(index=0)]  # chunk 2's marker was dropped

        m.post(BULK_URL, json={"call_ids": list(range(11, 16))})
        result = operator(numbers(15), chunk_size=10, wait_for_completion=False).execute(context(store))
    assert [c[0] for c in result["calls"]] == [str(n) for n in range(1, 16)]
    assert m.call_count == 3
    assert "1 of 2 chunks (10 calls) were queued by an earlier try" in capsys.readouterr().out


def test_a_retry_after_every_chunk_was_queued_only_tracks_the_calls(sim: FuseSimulator) -> None:
    store = FakeStore()
    operator(numbers(12), chunk_size=5, wait_for_completion=False).execute(context(store))
    result = operator(numbers(12), chunk_size=5).execute(context(store))
    assert result["totals"] == {"completed": 12} and len(sim.requests("bulk_queue")) == 3


def test_rows_that_changed_between_tries_are_refused_before_any_upload(sim: FuseSimulator) -> None:
    store = FakeStore()
    operator(numbers(12), chunk_size=5, wait_for_completion=False).execute(context(store))
    changed = numbers(12)
    changed[7]["variables"] = {"n": "another"}
    with pytest.raises(FuseError, match="sent chunk 2 with other rows") as info:
        operator(changed, chunk_size=5).execute(context(store))
    assert "Nothing was sent" in str(info.value)
    with pytest.raises(FuseError, match="sent chunk 3 with other rows"):
        operator(numbers(10), chunk_size=5).execute(context(store))  # fewer chunks than before
    unanswered = FakeStore({CHUNK_SENT_KEY.format(index=0): {"fingerprint": "other", "at": "2026-11-27"}})
    with pytest.raises(FuseError, match="sent chunk 1 with other rows"):
        operator(numbers(5), reupload_unanswered=True).execute(context(unanswered))
    assert len(sim.requests("bulk_queue")) == 3 and sim.requests("status") == []


def test_without_a_task_state_store_it_warns_what_is_not_protected(
    sim: FuseSimulator, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    operator(numbers(2), wait_for_completion=False).execute(context())
    assert "no task state store" in logged(capsys, caplog)


# --- calling hours -------------------------------------------------------------------------------


def test_each_time_zone_gets_its_own_upload_and_window(sim: FuseSimulator) -> None:
    # Hours open now on both coasts, closing 9 and 12 hours later: never past for the simulator.
    pacific = datetime.now(ZoneInfo("America/Los_Angeles"))
    hours = (f"{pacific - timedelta(hours=1):%H:%M}", f"{pacific + timedelta(hours=12):%H:%M}")
    calls = [{"phone_number": n} for n in ("+16175550101", "+14155550102", "+16175550103")]
    result = operator(calls, calling_hours=hours, end_timestamp=timedelta(days=1)).execute(
        context(FakeStore())
    )
    assert result["totals"] == {"completed": 3}
    boston, frisco = sim.requests("bulk_queue")
    assert (len(boston.call_ids), len(frisco.call_ids)) == (2, 1)
    closes = [int(e.form[protocol.END_TIMESTAMP]) for e in (boston, frisco)]
    assert closes[1] - closes[0] == 3 * 3600  # each coast's own close
    assert [c[1] for c in result["calls"]] == [1, 2, 3]


# --- waiting, the success policy and the result ------------------------------------------------


def test_the_success_policy_fails_the_task_naming_the_counts_and_keeps_the_result(sim: FuseSimulator) -> None:
    calls = numbers(5)
    for call in calls[:2]:
        sim.script(call["phone_number"], "never")
    ctx = context(FakeStore())
    with pytest.raises(FuseCallFailed, match=r"Only 3 of 5 calls completed \(60.0%\): failed 2") as info:
        operator(calls, min_completed_ratio=0.8).execute(ctx)
    assert "min_completed_ratio=0.8 (4 needed)" in str(info.value)
    kept = CampaignResult.from_xcom(ctx["ti"].xcom[RESULT_XCOM_KEY])
    assert [c.row for c in kept.not_reached] == [1, 2]


def test_by_default_people_not_answering_do_not_fail_the_task(
    sim: FuseSimulator, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    sim.set_default_outcome("reject")
    result = operator(numbers(3)).execute(context(FakeStore()))
    assert result["totals"] == {"rejected": 3} and result["completed_ratio"] == 0
    assert "No call of the campaign completed" in logged(capsys, caplog)


def test_past_the_cap_the_result_lists_the_calls_not_reached_and_says_so(
    sim: FuseSimulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("airflow_provider_fuse.campaign.MAX_CALLS_IN_RESULT", 2)
    sim.script("+16175550101", "reject")
    sim.script("+16175550103", "reject")
    sim.script("+16175550104", "reject")
    result = operator(numbers(5)).execute(context(FakeStore()))
    assert result["truncated"] is True and result["calls_count"] == 5
    assert [(c[1], c[3]) for c in result["calls"]] == [(2, "rejected"), (4, "rejected")]
    assert result["totals"] == {"completed": 2, "rejected": 3} and result["completed_ratio"] == 0.4
    assert "The result lists 2 of the 5 calls" in logged(capsys, caplog)


def test_the_deadline_fails_the_task_and_cancels_nothing(sim: FuseSimulator) -> None:
    ctx = context(FakeStore())
    with pytest.raises(FuseWaitTimeout, match="2 of 2 Fuse calls had not ended") as info:
        operator(numbers(2), start_timestamp=timedelta(days=3), timeout=0.3).execute(ctx)
    assert "NOT cancelled" in str(info.value) and "0 of 2 calls completed" in str(info.value)
    assert ctx["ti"].xcom[RESULT_XCOM_KEY]["finished"] is False
    assert sim.requests("cancel") == [] and sim.requests("status") == []  # not polled before their start


def test_deferrable_hands_every_call_to_one_trigger_and_concludes_from_its_event(
    sim: FuseSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.script("+16175550101", "never")
    calls = numbers(3, first=100)
    ctx = context(FakeStore())
    queued_at = time.time()
    with pytest.raises(TaskDeferred) as info:
        operator(calls, deferrable=True, poll_interval=0.05, max_requests_per_second=25).execute(ctx)
    deferred_at = time.time()
    trigger = info.value.trigger
    assert isinstance(trigger, FuseCallsTrigger) and info.value.method_name == "execute_complete"
    assert trigger.call_ids == [] and trigger.call_ids_in_xcom is not None  # the ids are in XCom
    assert (trigger.poll_interval, trigger.max_requests_per_second) == (0.05, 25)
    # The task's timeout (30 s) counts from the end of the uploads, so it lies between these two.
    assert queued_at + 30 <= trigger.deadline <= deferred_at + 30 and info.value.timeout is None
    assert ctx["ti"].xcom[QUEUED_XCOM_KEY]["chunks"] == 1
    read = serve_xcom(monkeypatch, ctx["ti"])
    rebuilt = FuseCallsTrigger(**trigger.serialize()[1])  # as the triggerer does

    async def wait() -> dict[str, Any]:
        (event,) = [event.payload async for event in rebuilt.run()]
        return event

    event = asyncio.run(within(HANG, wait(), "FuseCallsTrigger"))
    assert read == ["campaign_chunk_0"] and rebuilt.call_ids == ["1", "2", "3"]
    result = operator(calls, deferrable=True).execute_complete(ctx, event)
    assert result["totals"] == {"completed": 2, "failed": 1}
    assert [(c[0], c[1], c[3]) for c in result["calls"]] == [
        ("1", 1, "completed"),
        ("2", 2, "failed"),
        ("3", 3, "completed"),
    ]


def test_calls_starting_later_are_handed_to_the_trigger_with_their_start(
    sim: FuseSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = context(FakeStore())
    with pytest.raises(TaskDeferred) as info:
        operator(numbers(2), start_timestamp=timedelta(hours=1), deferrable=True, timeout=0.5).execute(ctx)
    trigger = info.value.trigger
    ((start, indexes),) = trigger.call_ids_in_xcom["starts"]
    assert indexes == ["0"] and start == int(sim.requests("bulk_queue")[0].form[protocol.START_TIMESTAMP])
    serve_xcom(monkeypatch, ctx["ti"])

    async def wait() -> dict[str, Any]:
        (event,) = [event.payload async for event in trigger.run()]
        return event

    event = asyncio.run(within(HANG, wait(), "FuseCallsTrigger"))
    assert trigger.not_before == [(start, ["1", "2"])] and event["status"] == "timeout"
    assert sim.requests("status") == []  # not polled before their start


@pytest.mark.usefixtures("fuse_conn")
def test_an_error_event_fails_the_task_with_fuse_s_message_and_keeps_the_result() -> None:
    ctx = context()
    ctx["ti"].xcom[QUEUED_XCOM_KEY] = {"rows": 1, "call_rows": ["1"]}
    event = {"status": "error", "message": "HTTP 401: bad key", "calls": [["7", "dialing", 1, None]]}
    with pytest.raises(FuseError, match="HTTP 401: bad key"):
        operator([]).execute_complete(ctx, event)
    assert ctx["ti"].xcom[RESULT_XCOM_KEY]["calls"] == [["7", 1, None, "dialing", 1]]


def test_is_pci_variables_of_inline_rows_are_masked_in_the_rendered_template_view() -> None:
    from airflow.sdk.execution_time.task_runner import _serialize_rendered_fields

    rows = [{"phone_number": "+16175550101", "variables": {"pin_hint": "{{ params.hint }}"}}]
    op = operator(rows, task_id="pci_campaign", is_pci=True, fuse_conn_id="{{ params.conn }}")
    op.render_template_fields({"params": {"hint": "campaign-PCI-5521", "conn": "fuse_eu"}})
    stored = repr(_serialize_rendered_fields(op))
    assert "campaign-PCI-5521" not in stored and "***" in stored
    assert op.fuse_conn_id == "fuse_eu"


def test_a_csv_file_is_read_from_an_object_storage_path(sim: FuseSimulator, tmp_path: Path) -> None:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    path = tmp_path / "calls.csv"
    path.write_text("phone_number,name\n+16175550101,Ann\n")
    result = operator(ObjectStoragePath(path.as_uri()), wait_for_completion=False).execute(
        context(FakeStore())
    )
    assert [c[3] for c in result["calls"]] == ["queued"]
    (upload,) = sim.requests("bulk_queue")
    assert upload.form[protocol.BULK_CSV_FIELD].splitlines() == ["destination,name", "tel:+16175550101,Ann"]

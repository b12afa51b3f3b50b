"""resume.py: queue at most once, and what a retried try does with what an earlier try left."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_provider_fuse import campaign, resume
from airflow_provider_fuse.exceptions import FuseConnectionError, FuseError, FuseRequestError
from airflow_provider_fuse.models import CallDetails
from tests.support import FakeStore

LOG = logging.getLogger("tests.resume")
NOW = datetime(2026, 6, 2, 16, 0, tzinfo=timezone.utc)


def memory(data: dict[str, Any] | None = None) -> tuple[resume.TaskMemory, FakeStore]:
    store = FakeStore(data)
    return resume.TaskMemory({"task_state_store": store}), store  # type: ignore[typeddict-item]


def test_the_state_store_keys_keep_their_names() -> None:
    """Renaming a key would make tries already in flight forget their calls."""
    assert resume.CALL_ID_KEY == "fuse_call_id"
    assert resume.QUEUE_SENT_KEY == "fuse_queue_request_sent_at"
    assert resume.CHUNK_KEY.format(index=2) == "fuse_campaign_chunk_2"
    assert resume.CHUNK_SENT_KEY.format(index=2) == "fuse_campaign_chunk_2_sent"


def test_the_marker_is_stored_before_sending_and_replaced_by_the_call_id() -> None:
    mem, store = memory()
    seen: list[dict[str, Any]] = []

    def send() -> str:
        seen.append(dict(store.data))
        return "42"

    assert resume.queue_call_once(mem, send) == "42"
    assert list(seen[0]) == [resume.QUEUE_SENT_KEY]
    assert store.data == {resume.CALL_ID_KEY: "42"}


@pytest.mark.parametrize(
    ("error", "marker_kept"),
    [
        (FuseConnectionError("refused", reached_fuse=False), False),
        (FuseRequestError("400"), False),
        (FuseConnectionError("read timeout", reached_fuse=True), True),
        (FuseError("unknown"), True),
    ],
)
def test_the_marker_stays_only_when_the_call_may_have_been_queued(
    error: FuseError, marker_kept: bool
) -> None:
    mem, store = memory()

    def send() -> str:
        raise error

    with pytest.raises(type(error)):
        resume.queue_call_once(mem, send)
    assert (resume.QUEUE_SENT_KEY in store.data) is marker_kept
    assert resume.CALL_ID_KEY not in store.data


class Status:
    def __init__(self, status: str):
        self.status = status
        self.asked: list[str] = []

    def __call__(self, call_id: str) -> CallDetails:
        self.asked.append(call_id)
        return CallDetails(call_id=call_id, status=self.status)


@pytest.mark.parametrize(
    ("status", "redial", "resumed"),
    [
        ("dialing", False, "7"),
        ("completed", True, "7"),
        ("failed", False, "7"),
        ("failed", True, None),
    ],
)
def test_a_retry_resumes_the_earlier_call_unless_it_failed_and_redial_was_asked(
    status: str, redial: bool, resumed: str | None
) -> None:
    mem, _ = memory({resume.CALL_ID_KEY: "7"})
    read = Status(status)
    assert resume.resume_call(mem, read, redial_on_retry=redial, what="the call", log=LOG) == resumed
    assert read.asked == ["7"]


def test_a_retry_after_an_unanswered_request_refuses_unless_redial_was_asked() -> None:
    mem, _ = memory({resume.QUEUE_SENT_KEY: "2026-06-02T16:00:00+00:00"})
    with pytest.raises(FuseError, match=r"2026-06-02T16:00:00.*the call to \+16\*\*\*123.*redial_on_retry"):
        resume.resume_call(mem, Status("x"), redial_on_retry=False, what="the call to +16***123", log=LOG)
    assert resume.resume_call(mem, Status("x"), redial_on_retry=True, what="the call", log=LOG) is None


def test_a_first_try_finds_nothing_and_queues() -> None:
    mem, _ = memory()
    assert resume.resume_call(mem, Status("x"), redial_on_retry=False, what="the call", log=LOG) is None


def test_without_a_state_store_nothing_is_remembered_and_the_task_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mem = resume.TaskMemory({})  # type: ignore[typeddict-item]
    assert resume.queue_call_once(mem, lambda: "9") == "9"
    assert mem.get(resume.CALL_ID_KEY) is None
    with caplog.at_level(logging.WARNING):
        resume.warn_if_unprotected(LOG, mem)
    assert "no task state store" in caplog.text


def plan(numbers: list[str], chunk_size: int = 2) -> campaign.CampaignPlan:
    rows = [{"phone_number": number} for number in numbers]
    return campaign.plan_campaign(rows, {}, chunk_size=chunk_size, now=NOW)


NUMBERS = ["+16175550101", "+16175550102", "+16175550103"]


def test_a_chunk_is_uploaded_once_and_its_record_resumed_by_a_retry() -> None:
    mem, store = memory()
    chunks = plan(NUMBERS).chunks
    record = resume.queue_chunk_once(mem, chunks[0], lambda: ["1", "2"])
    assert record == {"fingerprint": chunks[0].fingerprint, "call_ids": ["1", "2"], "start": None}
    assert resume.resume_chunks(mem, chunks, reupload_unanswered=False, log=LOG) == [record, None]
    assert set(store.data) == {resume.CHUNK_KEY.format(index=0)}


def test_an_unanswered_chunk_upload_is_refused_unless_reupload_was_asked() -> None:
    mem, _ = memory()
    chunks = plan(NUMBERS).chunks

    def timed_out() -> list[str]:
        raise FuseConnectionError("read timeout", reached_fuse=True)

    with pytest.raises(FuseConnectionError):
        resume.queue_chunk_once(mem, chunks[1], timed_out)
    with pytest.raises(FuseError, match=r"chunk 2 of 2.*reupload_unanswered=True"):
        resume.resume_chunks(mem, chunks, reupload_unanswered=False, log=LOG)
    assert resume.resume_chunks(mem, chunks, reupload_unanswered=True, log=LOG) == [None, None]


@pytest.mark.parametrize("other", [NUMBERS[::-1], NUMBERS[:2]])
def test_chunks_that_changed_between_tries_are_refused_before_any_upload(other: list[str]) -> None:
    mem, _ = memory()
    for chunk in plan(NUMBERS, chunk_size=1).chunks:
        resume.queue_chunk_once(mem, chunk, lambda: ["1"])
    with pytest.raises(FuseError, match="changed between tries"):
        resume.resume_chunks(mem, plan(other, chunk_size=1).chunks, reupload_unanswered=True, log=LOG)


def test_process_memory_is_kept_per_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resume, "_process_memory", {})
    first = resume.ProcessMemory(("event", 1))
    resume.queue_call_once(first, lambda: "5")
    assert resume.already_sent(resume.ProcessMemory(("event", 1)))
    assert not resume.already_sent(resume.ProcessMemory(("event", 2)))

"""resume.py: queue at most once, and what a retried try does with what an earlier try left."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
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


# --- records stamped with the try, retry or clear ----------------------------------------------------


class TI:
    def __init__(self, try_number: int, max_tries: int):
        self.try_number, self.max_tries = try_number, max_tries


def stamped(store: FakeStore, try_number: int, max_tries: int) -> resume.TaskMemory:
    return resume.TaskMemory({"task_state_store": store, "ti": TI(try_number, max_tries)})  # type: ignore[typeddict-item]


def test_records_carry_the_try_that_wrote_them_and_its_max_tries() -> None:
    store = FakeStore()
    assert resume.queue_call_once(stamped(store, 2, 3), lambda: "42") == "42"
    assert store.data == {resume.CALL_ID_KEY: {"call_id": "42", "try_number": 2, "max_tries": 3}}
    sent = FakeStore()

    def lost() -> str:
        raise FuseConnectionError("read timeout", reached_fuse=True)

    with pytest.raises(FuseConnectionError):
        resume.queue_call_once(stamped(sent, 1, 3), lost)
    assert sent.data[resume.QUEUE_SENT_KEY]["max_tries"] == 3


@pytest.mark.parametrize(
    ("record", "now", "cleared"),
    [
        ({"max_tries": 3}, (2, 3), False),  # an automatic retry keeps max_tries
        ({"max_tries": 3}, (3, 5), True),  # a clear sets it to try_number + retries
        ({}, (3, 5), False),  # written before 0.2: resumed as it always was
        ({"max_tries": 3}, None, False),  # no task instance to compare with
    ],
)
def test_a_clear_is_told_from_a_retry_by_max_tries(
    record: dict[str, Any], now: tuple[int, int] | None, cleared: bool
) -> None:
    mem = stamped(FakeStore(), *now) if now else resume.TaskMemory({"task_state_store": FakeStore()})  # type: ignore[typeddict-item]
    assert resume.cleared_since(record, mem) is cleared


def test_the_bare_id_and_time_of_earlier_releases_read_as_records() -> None:
    assert resume.call_record("7") == {"call_id": "7"}
    assert resume.call_record({"call_id": 7, "max_tries": 2}) == {"call_id": "7", "max_tries": 2}
    assert resume.sent_marker("2026-06-02T16:00:00+00:00") == {"at": "2026-06-02T16:00:00+00:00"}


def test_a_cleared_call_fuse_no_longer_knows_counts_as_ended() -> None:
    from airflow_provider_fuse.exceptions import FuseNotFoundError

    store = FakeStore({resume.CALL_ID_KEY: {"call_id": "7", "try_number": 1, "max_tries": 2}})

    def gone(call_id: str) -> CallDetails:
        raise FuseNotFoundError("404")

    assert resume.resume_call(stamped(store, 2, 3), gone, redial_on_retry=False, what="x", log=LOG) is None


# --- retention -------------------------------------------------------------------------------------


class Task:
    def __init__(self, **kwargs: Any):
        self.retries = 0
        self.retry_delay = timedelta(minutes=5)
        self.retry_exponential_backoff = 0
        self.max_retry_delay = None
        self.execution_timeout = None
        vars(self).update(kwargs)


HOUR = 3600.0


def test_retention_is_never_shorter_than_the_deployment_default() -> None:
    assert resume.retention(Task(), HOUR, 0.0) == timedelta(days=30)


def test_retention_covers_every_retry_and_its_delay() -> None:
    task = Task(retries=10, retry_delay=timedelta(days=5))
    kept = resume.retention(task, HOUR, 0.0)
    assert timedelta(days=50) < kept < timedelta(days=70)


def test_retention_covers_exponential_delays_up_to_their_ceiling() -> None:
    task = Task(retries=8, retry_exponential_backoff=2.0, max_retry_delay=timedelta(days=7))
    assert resume.retention(task, HOUR, 0.0) >= timedelta(days=56)


def test_retention_covers_long_tries_and_late_calls() -> None:
    slow = Task(retries=3, execution_timeout=timedelta(days=10))
    assert resume.retention(slow, HOUR, None) >= timedelta(days=40)
    assert resume.retention(Task(), 90 * 86400.0, 0.0) > timedelta(days=90)


def test_never_expire_is_airflows_own_object() -> None:
    sdk = pytest.importorskip("airflow.sdk")
    if not hasattr(sdk, "NEVER_EXPIRE"):
        pytest.skip("NEVER_EXPIRE arrived with the task state store in Airflow 3.3")
    assert resume.NEVER_EXPIRE is sdk.NEVER_EXPIRE


def test_a_deployment_that_never_expires_keys_gets_never_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__STATE_STORE__DEFAULT_RETENTION_DAYS", "0")
    assert resume.retention(Task(retries=3), HOUR, 0.0) is resume.NEVER_EXPIRE


def test_calls_end_when_fuse_stops_attempting() -> None:
    from airflow_provider_fuse.models import CallRequest

    now = NOW.timestamp()
    later = CallRequest(
        "+16175550101", start_timestamp=int(now) + 86400, max_attempts=3, reattempt_wait=600, now=NOW
    )
    ended = resume.calls_end_within([later], now)
    assert ended == 86400 + 2 * 600 + resume.LAST_ATTEMPT_SECONDS
    capped = CallRequest(
        "+16175550101", end_timestamp=int(now) + 7200, max_attempts=10, reattempt_wait=3600, now=NOW
    )
    assert resume.calls_end_within([capped], now) == 7200 + resume.LAST_ATTEMPT_SECONDS


def test_the_task_memory_writes_with_its_retention() -> None:
    calls: list[dict[str, Any]] = []

    class Store(FakeStore):
        def set(self, key: str, value: Any, **kwargs: Any) -> None:
            calls.append(kwargs)
            super().set(key, value)

    resume.TaskMemory({"task_state_store": Store()}, timedelta(days=40)).set("k", 1)  # type: ignore[typeddict-item]
    assert calls == [{"retention": timedelta(days=40)}]


# --- memories for callbacks ---------------------------------------------------------------------------


class Variables:
    """``airflow.sdk.Variable``'s class methods over a dict, counting reads."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.reads = 0

    def get(self, key: str, default: Any = None, deserialize_json: bool = False) -> Any:
        self.reads += 1
        return self.values.get(key, default)

    def set(self, key: str, value: Any, description: str | None = None, serialize_json: bool = False) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def test_shared_memory_reads_its_variable_once_and_deletes_it_when_empty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import airflow.sdk

    variables = Variables()
    monkeypatch.setattr(airflow.sdk, "Variable", variables)
    shared = resume.SharedMemory("fuse_notifier_x", {"dag_id": "d"}, LOG)
    assert shared.get("a") is None and shared.get("b") is None
    shared.set("a", 1)
    assert variables.values == {"fuse_notifier_x": {"dag_id": "d", "memory": {"a": 1}}}
    assert resume.SharedMemory("fuse_notifier_x", {}, LOG).get("a") == 1
    shared.delete("a")
    assert variables.values == {} and variables.reads == 2


def test_layered_memory_reads_the_first_that_knows_and_writes_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resume, "_process_memory", {})
    first, second = resume.ProcessMemory("one"), resume.ProcessMemory("two")
    second.set("k", "from two")
    both = resume.LayeredMemory(first, second)
    assert both.get("k") == "from two"
    both.set("k", "new")
    assert (first.get("k"), second.get("k")) == ("new", "new")
    both.delete("k")
    assert both.get("k") is None


def test_a_retention_beyond_any_date_never_expires() -> None:
    assert (
        resume.retention(Task(retries=10**6, retry_delay=timedelta(days=1)), HOUR, 0.0) is resume.NEVER_EXPIRE
    )


# --- chunks Fuse queued without answering ids -------------------------------------------------------


def test_a_chunk_queued_without_ids_is_recorded_untracked_and_never_uploaded_again() -> None:
    mem, store = memory()
    chunks = plan(NUMBERS).chunks
    record = resume.queue_chunk_once(mem, chunks[0], lambda: None)
    assert record == {"fingerprint": chunks[0].fingerprint, "call_ids": [], "start": None, "untracked": True}
    assert resume.chunk_call_ids(record) is None
    assert set(store.data) == {resume.CHUNK_KEY.format(index=0)}  # the marker is gone: it IS queued
    assert resume.resume_chunks(mem, chunks, reupload_unanswered=True, log=LOG) == [record, None]


def test_a_cleared_campaign_with_an_untracked_chunk_re_attaches_rather_than_calling_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeStore()
    chunks = plan(NUMBERS).chunks
    resume.queue_chunk_once(stamped(store, 1, 2), chunks[0], lambda: None)
    resume.queue_chunk_once(stamped(store, 1, 2), chunks[1], lambda: ["9"])
    asked: list[list[str]] = []

    def all_ended(ids: list[str]) -> None:
        asked.append(ids)
        return None

    with caplog.at_level(logging.INFO):
        records = resume.resume_chunks(
            stamped(store, 3, 5), chunks, reupload_unanswered=False, log=LOG, still_in_progress=all_ended
        )
    assert [bool(record) for record in records] == [True, True]  # nothing is uploaded again
    assert asked == [["9"]] and "queued without call ids" in caplog.text
    assert store.data[resume.CHUNK_KEY.format(index=0)]["max_tries"] == 5  # this run's retries resume it

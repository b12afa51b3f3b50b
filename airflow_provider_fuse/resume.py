"""Queue at most once: what a task remembers across its tries, and what a later try does with it.

Fuse has no idempotency key, so a queue request that may have reached Fuse is never sent again by
accident. Before sending, a "request under way" marker is stored; after, the call id (or a chunk's
ids). A later try finds one of three things: nothing (queue), the ids (resume: wait for those
calls), or only the marker (the earlier request's outcome is unknown: refuse, unless the user opted in).

Each record carries the ``try_number`` that wrote it and the task instance's ``max_tries`` then. An
automatic retry keeps ``max_tries``; clearing a task instance (a person asking for the task to run
again) raises it. So a later try with another ``max_tries`` was cleared: it calls again, unless the
earlier call is still in progress, which it re-attaches to. Records without ``max_tries`` (written by
releases before 0.2) are resumed, as they always were.

Backed by Airflow 3.3's task state store (``context["task_state_store"]``), with a retention that
outlives every automatic retry (:func:`retention`). On older Airflow there is no such store: the
memory is empty, and ``available`` is False so callers can say what that costs (a retried task
queues again). Callbacks have no usable task state store (the dag-processor's hangs, a retry
callback's belongs to the next try): the notifier remembers in this process first, then in an
Airflow Variable that the task runner and the dag-processor share (:class:`SharedMemory`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, TypeVar

from airflow_provider_fuse.exceptions import FuseError, FuseNotFoundError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_fuse.campaign import Chunk
    from airflow_provider_fuse.models import CallDetails, CallRequest

#: Task state store keys (renaming them breaks resuming tries already in flight).
CALL_ID_KEY = "fuse_call_id"
QUEUE_SENT_KEY = "fuse_queue_request_sent_at"
#: A campaign's keys, per chunk index.
CHUNK_KEY = "fuse_campaign_chunk_{index}"
CHUNK_SENT_KEY = "fuse_campaign_chunk_{index}_sent"

#: ``airflow.sdk.NEVER_EXPIRE`` (Airflow 3.3, compared by identity): the same object.
NEVER_EXPIRE = timedelta.max
#: Added to every key's retention: a late scheduler, a clock off, a person looking into a failure.
RETENTION_MARGIN = timedelta(days=1)
#: Added to each try: waiting for a worker slot, starting up, reporting.
TRY_OVERHEAD = timedelta(hours=1)
#: Longer than this, a retention is NEVER_EXPIRE (Airflow adds it to the current date).
LONGEST_RETENTION = timedelta(days=36_500)
#: How long after its last attempt starts a call may still ring, be answered and be reported.
LAST_ATTEMPT_SECONDS = 3600.0

#: Logged once per task when the store is missing.
NOT_PROTECTED = (
    "This Airflow has no task state store (it arrived in Airflow 3.3): if this try fails after "
    "queueing, a retry cannot find the call and will queue a NEW one. Upgrade to Airflow 3.3+ for "
    "retry-safe calls, or set retries=0."
)

R = TypeVar("R")
Log = logging.Logger | Any


class Stamp(TypedDict, total=False):
    """Which try wrote a record, and the task instance's ``max_tries`` then (absent: before 0.2)."""

    try_number: int
    max_tries: int


class CallRecord(Stamp):
    """A queued call, stored under ``CALL_ID_KEY`` (earlier releases stored the bare id)."""

    call_id: str


class CallSent(Stamp):
    """The marker of a queue request under way, under ``QUEUE_SENT_KEY`` (earlier: the bare time)."""

    at: str


class ChunkFlags(Stamp, total=False):
    """What a chunk record may carry besides its stamp: ``untracked`` (see :class:`ChunkRecord`)."""

    untracked: bool


class ChunkRecord(ChunkFlags):
    """A queued chunk, stored under ``CHUNK_KEY``: which rows (by fingerprint), their ids, their start.

    ``untracked``: Fuse accepted the upload without answering ids (``call_ids`` is then empty). The
    chunk IS queued: a retry never uploads it again, and nobody asks Fuse about its calls.
    """

    fingerprint: str
    call_ids: list[str]
    start: int | None


class ChunkSent(Stamp):
    """The marker of a chunk upload under way, stored under ``CHUNK_SENT_KEY``."""

    fingerprint: str
    at: str


class Memory(Protocol):
    """Small JSON values kept across tries (or repeated callbacks); ``stamp`` marks what they write."""

    @property
    def available(self) -> bool: ...

    @property
    def stamp(self) -> Stamp: ...

    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...


class TaskMemory:
    """A task instance's memory across tries: Airflow 3.3's task state store, when there is one.

    ``retention`` (see :func:`retention`) is how long each key written lives; None: the deployment's
    ``[state_store] default_retention_days``.
    """

    def __init__(self, context: Context, retention: timedelta | None = None):
        self._store: Any = context.get("task_state_store")
        self._retention = retention
        ti = context.get("ti")
        try_number, max_tries = getattr(ti, "try_number", None), getattr(ti, "max_tries", None)
        self.stamp: Stamp = (
            {"try_number": try_number, "max_tries": max_tries}
            if type(try_number) is int and type(max_tries) is int
            else {}
        )

    @property
    def available(self) -> bool:
        return self._store is not None

    def get(self, key: str) -> Any:
        return self._store.get(key) if self._store is not None else None

    def set(self, key: str, value: Any) -> None:
        if self._store is None:
            return
        if self._retention is None:
            self._store.set(key, value)
        else:
            self._store.set(key, value, retention=self._retention)

    def delete(self, key: str) -> None:
        if self._store is not None:
            self._store.delete(key)


#: ProcessMemory's values, per scope: what this process has sent.
_process_memory: dict[Hashable, dict[str, Any]] = {}


class ProcessMemory:
    """Memory kept in this process only, per ``scope`` (for example one failure event)."""

    available = True
    stamp: Stamp = {}

    def __init__(self, scope: Hashable):
        self._values = _process_memory.setdefault(scope, {})

    def get(self, key: str) -> Any:
        return self._values.get(key)

    def set(self, key: str, value: Any) -> None:
        self._values[key] = value

    def delete(self, key: str) -> None:
        self._values.pop(key, None)


class SharedMemory:
    """Memory every process of the deployment sees: one Airflow Variable ``name`` holding JSON.

    For callbacks, which the task runner and, after a heartbeat timeout, the dag-processor may both
    run for one failure: Variables work in both. ``about`` (what the values are for, nothing
    personal) is stored beside them so that a person can tell what a Variable is. The Variable is
    read once, written on each change, and deleted when it holds nothing. When Variables cannot be
    used, a warning says so and the memory stays in this object only: the callback still calls.
    """

    available = True
    stamp: Stamp = {}

    def __init__(self, name: str, about: Mapping[str, Any], log: Log):
        self.name = name
        self._about = dict(about)
        self._log = log
        self._values: dict[str, Any] | None = None

    def get(self, key: str) -> Any:
        return self._load().get(key)

    def set(self, key: str, value: Any) -> None:
        self._load()[key] = value
        self._save()

    def delete(self, key: str) -> None:
        if self._load().pop(key, None) is not None:
            self._save()

    def _load(self) -> dict[str, Any]:
        if self._values is None:
            stored: Any = None
            try:
                from airflow.sdk import Variable

                stored = Variable.get(self.name, default=None, deserialize_json=True)
            except Exception as error:
                self._unusable("read", error)
            memory = stored.get("memory") if isinstance(stored, dict) else None
            self._values = dict(memory) if isinstance(memory, dict) else {}
        return self._values

    def _save(self) -> None:
        try:
            from airflow.sdk import Variable

            if self._values:
                description = "airflow-provider-fuse: what a callback sent for one failure (see its README)."
                value = {**self._about, "memory": self._values}
                Variable.set(self.name, value, description=description, serialize_json=True)
            else:
                Variable.delete(self.name)
        except Exception as error:
            self._unusable("written", error)

    def _unusable(self, done: str, error: Exception) -> None:
        self._log.warning(
            "Airflow Variable %s could not be %s (%s: %s): another process handling the same failure "
            "would not know what this one sent.",
            self.name,
            done,
            type(error).__name__,
            error,
        )


class LayeredMemory:
    """Several memories as one: read from the first that knows, write to all (cheapest first)."""

    available = True
    stamp: Stamp = {}

    def __init__(self, *layers: Memory):
        self._layers = layers

    def get(self, key: str) -> Any:
        return next((value for layer in self._layers if (value := layer.get(key)) is not None), None)

    def set(self, key: str, value: Any) -> None:
        for layer in self._layers:
            layer.set(key, value)

    def delete(self, key: str) -> None:
        for layer in self._layers:
            layer.delete(key)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def warn_if_unprotected(log: Log, memory: Memory) -> None:
    if not memory.available:
        log.warning(NOT_PROTECTED)


# --- how long keys live ----------------------------------------------------------------------------


def calls_end_within(requests: Iterable[CallRequest], now: float) -> float:
    """Seconds from ``now`` until the last of these calls has surely ended (its last attempt reported)."""
    return dialing_ends_at(requests, now) - now + LAST_ATTEMPT_SECONDS


def dialing_ends_at(requests: Iterable[CallRequest], now: float) -> float:
    """When the last of these calls starts its last attempt (Unix time, ``now`` at the earliest).

    Fuse stops attempting at ``end_timestamp``; without one, after ``max_attempts`` attempts
    ``reattempt_wait`` apart from the start.
    """
    latest = now
    for request in requests:
        start = max(now, float(request.start_timestamp or now))
        spacing = (int(request.max_attempts or 1) - 1) * float(request.reattempt_wait or 0)
        end = float(request.end_timestamp) if request.end_timestamp else start + spacing
        latest = max(latest, end)
    return latest


def retention(task: Any, calls_seconds: float, wait_seconds: float | None) -> timedelta:
    """How long a task's keys must live: through every automatic retry, and while its calls may ring.

    After that only a person can run the task again (a clear), and a cleared task calls again
    unless its call is still in progress: so a key may then expire (``airflow state-store clean``).
    Never shorter than the deployment's ``[state_store] default_retention_days`` (0: never expire).

    ``calls_seconds``: see :func:`calls_end_within`; ``wait_seconds``: how long one try may wait for
    the calls (its ``timeout``, or ``calls_seconds`` without one), 0 when it does not wait.
    """
    from airflow.providers.common.compat.sdk import conf

    default_days = conf.getint("state_store", "default_retention_days", fallback=30)
    if default_days <= 0:
        return NEVER_EXPIRE  # the deployment keeps keys forever: so do we
    retries = max(0, int(getattr(task, "retries", 0) or 0))
    per_try = _seconds(getattr(task, "execution_timeout", None))
    if per_try is None:
        per_try = calls_seconds if wait_seconds is None else wait_seconds
    delay = _seconds(getattr(task, "retry_delay", None)) or 0.0
    if getattr(task, "retry_exponential_backoff", False):
        longest = _seconds(getattr(task, "max_retry_delay", None))
        delay = (
            longest if longest is not None else conf.getfloat("core", "max_task_retry_delay", fallback=86400)
        )
    tries_window = (retries + 1) * (per_try + TRY_OVERHEAD.total_seconds()) + retries * delay
    needed = max(tries_window, calls_seconds) + RETENTION_MARGIN.total_seconds()
    if not math.isfinite(needed) or needed > LONGEST_RETENTION.total_seconds():
        return NEVER_EXPIRE
    return max(timedelta(days=default_days), timedelta(seconds=math.ceil(needed)))


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


# --- queueing --------------------------------------------------------------------------------------


def queue_at_most_once(
    memory: Memory,
    sent_key: str,
    result_key: str,
    marker: Any,
    send: Callable[[], R],
    *,
    announce: Callable[[R], None] | None = None,
    what: Callable[[R], str] = str,
) -> R:
    """Send a queue request Fuse cannot deduplicate, remembering it while its outcome is unknown.

    ``marker`` is stored under ``sent_key`` before sending. It stays when the request may have
    queued calls (a read timeout, a 5xx) so that a later try refuses to send it again; it is
    dropped when Fuse provably queued nothing, or once the result is stored under ``result_key``.

    Once Fuse answers, ``announce`` (the log, then XCom) runs before the result is stored, so that
    the ids cannot be lost with the store: if storing or announcing fails, the error names what
    ``what(result)`` says was queued.
    """
    memory.set(sent_key, marker)
    try:
        result = send()
    except FuseError as error:
        if not error.call_may_be_queued:
            memory.delete(sent_key)
        raise
    problem: Exception | None = None
    try:
        if announce is not None:
            announce(result)
    except Exception as error:
        problem = error
    try:
        memory.set(result_key, result)
    except Exception as error:
        raise not_kept(what(result), error, stored=False) from error
    try:
        memory.delete(sent_key)  # read after the result by a later try: harmless if it stays
    except Exception as error:
        problem = problem or error
    if problem is not None:
        raise not_kept(what(result), problem, stored=True) from problem
    return result


# --- one call ------------------------------------------------------------------------------------


def call_record(stored: Any) -> CallRecord:
    """A stored ``CALL_ID_KEY`` value as a record (earlier releases stored the bare id)."""
    if isinstance(stored, Mapping):
        return {**stored, "call_id": str(stored.get("call_id"))}
    return {"call_id": str(stored)}


def sent_marker(stored: Any) -> CallSent:
    """A stored ``QUEUE_SENT_KEY`` value as a marker (earlier releases stored the bare time)."""
    if isinstance(stored, Mapping):
        return {**stored, "at": str(stored.get("at"))}
    return {"at": str(stored)}


def cleared_since(record: Mapping[str, Any], memory: Memory) -> bool:
    """Whether the task instance was cleared since ``record`` was written: Airflow raised ``max_tries``.

    An automatic retry keeps ``max_tries``; ``clear_task_instances`` sets it to ``try_number +
    retries``. Records without it (before 0.2) count as not cleared: they resume, as they did.
    """
    then, now = record.get("max_tries"), memory.stamp.get("max_tries")
    return then is not None and now is not None and then != now


def resume_call(
    memory: Memory,
    status: Callable[[str], CallDetails],
    *,
    redial_on_retry: bool,
    what: str,
    log: Log,
) -> str | None:
    """The call an earlier try queued, to wait for; None when this try must queue one.

    After an automatic retry the earlier call is resumed whatever its state, unless it ended without
    completing and the user asked to redial. After a clear it is re-attached to only while still in
    progress: a cleared task calls again. An earlier request whose outcome is unknown is refused
    unless the user asked to redial. ``status`` reads a call's details; ``what`` names the call
    (masked) in the refusal.
    """
    stored = memory.get(CALL_ID_KEY)
    if stored:
        record = call_record(stored)
        call_id = record["call_id"]
        if cleared_since(record, memory):
            return _after_clear(memory, record, status, log)
        details = status(call_id)
        if not (details.is_terminal and not details.succeeded and redial_on_retry):
            log.info("Resuming Fuse call %s queued by an earlier try (now %r).", call_id, details.status)
            return call_id
        log.warning(
            "Earlier Fuse call %s ended %r; redial_on_retry=True, so queueing a new call.",
            call_id,
            details.status,
        )
        return None
    stored = memory.get(QUEUE_SENT_KEY)
    if stored:
        sent = sent_marker(stored)
        if not redial_on_retry:
            raise unanswered_queue_request(
                sent["at"],
                what,
                "set redial_on_retry=True to queue again regardless.",
                cleared_since(sent, memory),
            )
        log.warning("An earlier try's queue request (%s) has no call id; redialing as asked.", sent["at"])
    return None


def _after_clear(
    memory: Memory, record: CallRecord, status: Callable[[str], CallDetails], log: Log
) -> str | None:
    """A cleared task calls again, unless the earlier call is still in progress: re-attach to that."""
    call_id = record["call_id"]
    try:
        details = status(call_id)
        ended, state = details.is_terminal, repr(details.status)
    except FuseNotFoundError:
        ended, state = True, "unknown to Fuse"
    if ended:
        log.warning(
            "This task was cleared since Fuse call %s (queued by try %s) ended (%s): a cleared task "
            "calls again, so a new call is queued.",
            call_id,
            record.get("try_number"),
            state,
        )
        return None
    log.info(
        "This task was cleared while Fuse call %s (queued by try %s) is still %s: re-attaching to it "
        "rather than calling again.",
        call_id,
        record.get("try_number"),
        state,
    )
    memory.set(CALL_ID_KEY, {**record, **memory.stamp})  # this run's automatic retries resume it
    return call_id


def queue_call_once(
    memory: Memory, send: Callable[[], str], announce: Callable[[str], None] | None = None
) -> str:
    """Queue one call through ``send``, at most once (see :func:`queue_at_most_once`).

    ``announce`` gets the call id as soon as Fuse answers, before it is stored. Without a known try
    (no task instance), the marker and the record are the bare time and id, as before 0.2.
    """
    stamp = memory.stamp

    def queue() -> CallRecord | str:
        call_id = send()
        return {"call_id": call_id, **stamp} if stamp else call_id

    def call_id_of(record: CallRecord | str) -> str:
        return call_record(record)["call_id"]

    marker: CallSent | str = {"at": now_iso(), **stamp} if stamp else now_iso()
    record = queue_at_most_once(
        memory,
        QUEUE_SENT_KEY,
        CALL_ID_KEY,
        marker,
        queue,
        announce=None if announce is None else lambda record: announce(call_id_of(record)),
        what=lambda record: f"call {call_id_of(record)}",
    )
    return call_id_of(record)


def already_sent(memory: Memory) -> bool:
    """Whether a call was queued here, or its request may have been (a repeated callback)."""
    return bool(memory.get(CALL_ID_KEY) or memory.get(QUEUE_SENT_KEY))


# --- a campaign's chunks ---------------------------------------------------------------------------


def resume_chunks(
    memory: Memory,
    chunks: Sequence[Chunk],
    *,
    reupload_unanswered: bool,
    log: Log,
    still_in_progress: Callable[[list[str]], str | None] = lambda ids: ids[-1] if ids else None,
) -> list[ChunkRecord | None]:
    """Each chunk's record from an earlier try, or None where this try must upload it.

    Refuses, before any upload, when an earlier try's chunks do not match this try's (other rows,
    another grouping), or when an earlier upload went unanswered and ``reupload_unanswered`` is off.
    After a clear, the earlier campaign is re-attached to while one of its calls is still in
    progress (``still_in_progress`` returns the first such call id, or None; by default every call
    counts as in progress); otherwise the task calls again: the earlier keys are dropped and every
    chunk is uploaded anew.
    """
    count = len(chunks)
    earlier = _earlier_chunks(memory, count)
    cleared = any(cleared_since(stored, memory) for pair in earlier for stored in pair if stored)
    if cleared and not _reattach_after_clear(memory, earlier, reupload_unanswered, still_in_progress, log):
        return [None] * count
    if len(earlier) > count:
        raise changed_between_tries(count, count)
    records: list[ChunkRecord | None] = []
    for chunk in chunks:
        record, sent = earlier[chunk.index] if chunk.index < len(earlier) else (None, None)
        found = record or sent
        if found and found.get("fingerprint", chunk.fingerprint) != chunk.fingerprint:
            raise changed_between_tries(chunk.index, count)
        if sent and not record:
            if not reupload_unanswered:
                raise unanswered_chunk(sent, chunk, count, cleared=cleared_since(sent, memory))
            log.warning(
                "Chunk %s's earlier upload went unanswered; uploading it again as asked.", chunk.index + 1
            )
        records.append(record)
    resumed = [chunk for chunk, record in zip(chunks, records, strict=True) if record]
    if resumed:
        log.info(
            "Resuming: %s of %s chunks (%s calls) were queued by an earlier try and are not uploaded again.",
            len(resumed),
            count,
            f"{sum(len(chunk.rows) for chunk in resumed):,}",
        )
    return records


def chunk_call_ids(record: ChunkRecord) -> list[str] | None:
    """A queued chunk's call ids, or None when Fuse queued it without answering them."""
    return None if record.get("untracked") else record["call_ids"]


def _earlier_chunks(memory: Memory, count: int) -> list[tuple[ChunkRecord | None, ChunkSent | None]]:
    """The record and the marker of each chunk an earlier try stored: this plan's ``count``, and
    any further ones (another plan's) up to the first index with neither."""
    found: list[tuple[ChunkRecord | None, ChunkSent | None]] = []
    while True:
        index = len(found)
        record = memory.get(CHUNK_KEY.format(index=index)) or None
        sent = None if record else memory.get(CHUNK_SENT_KEY.format(index=index)) or None
        if index >= count and not (record or sent):
            while found and found[-1] == (None, None):
                found.pop()
            return found
        found.append((record, sent))


def _reattach_after_clear(
    memory: Memory,
    earlier: list[tuple[ChunkRecord | None, ChunkSent | None]],
    reupload_unanswered: bool,
    still_in_progress: Callable[[list[str]], str | None],
    log: Log,
) -> bool:
    """A cleared campaign task: True to resume the earlier campaign (a call still in progress)."""
    call_ids = [call_id for record, _ in earlier if record for call_id in record["call_ids"]]
    untracked = any(record.get("untracked") for record, _ in earlier if record)
    busy = still_in_progress(call_ids) if call_ids else None
    if busy is not None or untracked:
        log.info(
            "This task was cleared while %s: re-attaching to that campaign (%s tracked calls) rather "
            "than calling again.",
            f"Fuse call {busy} of its earlier campaign is still in progress"
            if busy is not None
            else "an upload of its earlier campaign was queued without call ids, so whether those calls "
            f"ended is unknown (delete the keys {CHUNK_KEY.format(index='N')} to start afresh)",
            f"{len(call_ids):,}",
        )
        for index, (record, sent) in enumerate(earlier):
            key = CHUNK_KEY if record else CHUNK_SENT_KEY
            memory.set(key.format(index=index), {**(record or sent or {}), **memory.stamp})
        return True
    unanswered = [sent for _, sent in earlier if sent]
    if unanswered and not reupload_unanswered:
        raise unanswered_queue_request(
            unanswered[0].get("at"),
            "the calls of an earlier upload of this campaign",
            "set reupload_unanswered=True to upload again regardless (it may call those people twice), "
            f"or delete the key {CHUNK_SENT_KEY.format(index='N')} from this task instance's state store.",
            cleared=True,
        )
    log.warning(
        "This task was cleared since every call of its earlier campaign ended (%s calls, ids %s to %s): "
        "a cleared task calls again, so every chunk is uploaded anew.",
        f"{len(call_ids):,}",
        call_ids[0] if call_ids else "-",
        call_ids[-1] if call_ids else "-",
    )
    for index in range(len(earlier)):
        memory.delete(CHUNK_KEY.format(index=index))
        memory.delete(CHUNK_SENT_KEY.format(index=index))
    return False


def queue_chunk_once(
    memory: Memory,
    chunk: Chunk,
    send: Callable[[], list[str] | None],
    announce: Callable[[ChunkRecord], None] | None = None,
) -> ChunkRecord:
    """Upload one chunk through ``send``, at most once; returns the record a retry resumes from.

    ``send`` returns the calls' ids, or None when Fuse queued them without answering ids: the record
    is then ``untracked`` (queued, never uploaded again). ``announce`` gets the record as soon as Fuse
    answers, before it is stored.
    """
    fingerprint, start = chunk.fingerprint, chunk.start

    def upload() -> ChunkRecord:
        ids = send()
        record: ChunkRecord = {
            "fingerprint": fingerprint,
            "call_ids": ids or [],
            "start": start,
            **memory.stamp,
        }
        if ids is None:
            record["untracked"] = True
        return record

    def what(record: ChunkRecord) -> str:
        ids = record["call_ids"]
        calls = f"the {len(chunk.rows):,} calls of chunk {chunk.index + 1}"
        return f"{calls} (ids {ids[0]} to {ids[-1]})" if ids else f"{calls} (Fuse answered no call ids)"

    return queue_at_most_once(
        memory,
        CHUNK_SENT_KEY.format(index=chunk.index),
        CHUNK_KEY.format(index=chunk.index),
        {"fingerprint": fingerprint, "at": now_iso(), **memory.stamp},
        upload,
        announce=announce,
        what=what,
    )


# --- refusals ------------------------------------------------------------------------------------


def unanswered_queue_request(sent_at: Any, what: str, remedy: str, cleared: bool = False) -> FuseError:
    """The refusal of a later try whose predecessor's queue request has no recorded outcome."""
    since = "This task was cleared, but an earlier try" if cleared else "An earlier try"
    return FuseError(
        f"{since} sent a queue request at {sent_at} and no call id was recorded for it: Fuse did not "
        "answer, or answered ids that could not be stored (that try's log and error then name them). "
        f"So {what} may be queued or placed already. Check Fuse (or the callee) first; {remedy}"
    )


def unanswered_chunk(sent: Mapping[str, Any], chunk: Chunk, count: int, *, cleared: bool) -> FuseError:
    return unanswered_queue_request(
        sent.get("at"),
        f"the {len(chunk.rows):,} calls of chunk {chunk.index + 1} of {count}",
        "set reupload_unanswered=True to upload that chunk again regardless (it may call those people "
        "twice). Chunks already queued are never uploaded again.",
        cleared,
    )


def not_kept(what: str, error: BaseException, *, stored: bool) -> FuseError:
    """The error of a try that queued ``what`` but could not keep or announce its ids."""
    cause = f"{type(error).__name__}: {error}"
    if stored:
        return FuseError(
            f"Fuse queued {what}, and its ids are kept in the task state store (a retry resumes them), "
            f"but this try then failed ({cause})."
        )
    return FuseError(
        f"Fuse queued {what}, but its ids could not be kept in the task state store ({cause}). The "
        "calls WERE queued and may ring: do not queue them again. Their ids are in this log and in "
        "XCom; a retry of this task refuses to queue again."
    )


def changed_between_tries(index: int, count: int) -> FuseError:
    """The refusal of a retried campaign whose rows or grouping changed since an earlier try."""
    return FuseError(
        f"An earlier try sent chunk {index + 1} with other rows than this try plans ({count} chunk(s)): "
        "the calls or their grouping changed between tries (another CSV, an upstream task run again, "
        "another chunk_size, calling_hours or timezone). Nothing was sent, so that nobody is called twice. "
        f"The earlier calls' ids are in this task instance's state store ({CHUNK_KEY.format(index='N')}); "
        "to start the campaign afresh, delete those keys (Airflow UI or REST API) first."
    )

"""Queue at most once: what a task remembers across its tries, and what a retry does with it.

Fuse has no idempotency key, so a queue request that may have reached Fuse is never sent again by
accident. Before sending, a "request under way" marker is stored; after, the call id (or a chunk's
ids). A retried try finds one of three things: nothing (queue), the ids (resume: wait for those
calls), or only the marker (the earlier request went unanswered: refuse, unless the user opted in).

Backed by Airflow 3.3's task state store (``context["task_state_store"]``). On older Airflow there
is no such store: the memory is empty, and ``available`` is False so callers can say what that
costs (a retried task queues again). Callbacks have no task state store: the notifier remembers
per process (:class:`ProcessMemory`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, TypeVar

from airflow_provider_fuse.exceptions import FuseError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_fuse.campaign import Chunk
    from airflow_provider_fuse.models import CallDetails

#: Task state store keys (renaming them breaks resuming tries already in flight).
CALL_ID_KEY = "fuse_call_id"
QUEUE_SENT_KEY = "fuse_queue_request_sent_at"
#: A campaign's keys, per chunk index.
CHUNK_KEY = "fuse_campaign_chunk_{index}"
CHUNK_SENT_KEY = "fuse_campaign_chunk_{index}_sent"

#: Logged once per task when the store is missing.
NOT_PROTECTED = (
    "This Airflow has no task state store (it arrived in Airflow 3.3): if this try fails after "
    "queueing, a retry cannot find the call and will queue a NEW one. Upgrade to Airflow 3.3+ for "
    "retry-safe calls, or set retries=0."
)

T = TypeVar("T")
Log = logging.Logger | Any


class ChunkRecord(TypedDict):
    """A queued chunk, stored under ``CHUNK_KEY``: which rows (by fingerprint), their ids, their start."""

    fingerprint: str
    call_ids: list[str]
    start: int | None


class ChunkSent(TypedDict):
    """The marker of a chunk upload under way, stored under ``CHUNK_SENT_KEY``."""

    fingerprint: str
    at: str


class Memory(Protocol):
    """Small JSON values kept across tries (or repeated callbacks)."""

    @property
    def available(self) -> bool: ...

    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...


class TaskMemory:
    """A task instance's memory across tries: Airflow 3.3's task state store, when there is one."""

    def __init__(self, context: Context):
        self._store: Any = context.get("task_state_store")

    @property
    def available(self) -> bool:
        return self._store is not None

    def get(self, key: str) -> Any:
        return self._store.get(key) if self._store is not None else None

    def set(self, key: str, value: Any) -> None:
        if self._store is not None:
            self._store.set(key, value)

    def delete(self, key: str) -> None:
        if self._store is not None:
            self._store.delete(key)


#: ProcessMemory's values, per scope: what this process has sent.
_process_memory: dict[Hashable, dict[str, Any]] = {}


class ProcessMemory:
    """Memory kept in this process only, per ``scope`` (for example one failure event)."""

    available = True

    def __init__(self, scope: Hashable):
        self._values = _process_memory.setdefault(scope, {})

    def get(self, key: str) -> Any:
        return self._values.get(key)

    def set(self, key: str, value: Any) -> None:
        self._values[key] = value

    def delete(self, key: str) -> None:
        self._values.pop(key, None)


def queue_at_most_once(
    memory: Memory, sent_key: str, result_key: str, marker: Any, send: Callable[[], T]
) -> T:
    """Send a queue request Fuse cannot deduplicate, remembering it while its outcome is unknown.

    ``marker`` is stored under ``sent_key`` before sending. It stays when the request may have
    queued calls (a read timeout, a 5xx) so that a retried try refuses to send it again; it is
    dropped when Fuse provably queued nothing, or once the result is stored under ``result_key``.
    """
    memory.set(sent_key, marker)
    try:
        result = send()
    except FuseError as error:
        if not error.call_may_be_queued:
            memory.delete(sent_key)
        raise
    memory.set(result_key, result)
    memory.delete(sent_key)
    return result


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def warn_if_unprotected(log: Log, memory: Memory) -> None:
    if not memory.available:
        log.warning(NOT_PROTECTED)


# --- one call ------------------------------------------------------------------------------------


def resume_call(
    memory: Memory,
    status: Callable[[str], CallDetails],
    *,
    redial_on_retry: bool,
    what: str,
    log: Log,
) -> str | None:
    """The call an earlier try queued, to wait for; None when this try must queue one.

    An earlier call is resumed whatever its state, unless it ended without completing and the user
    asked to redial. An earlier request left unanswered is refused unless the user asked to redial.
    ``status`` reads a call's details; ``what`` names the call in the refusal (masked).
    """
    earlier = memory.get(CALL_ID_KEY)
    if earlier:
        details = status(str(earlier))
        if not (details.is_terminal and not details.succeeded and redial_on_retry):
            log.info("Resuming Fuse call %s queued by an earlier try (now %r).", earlier, details.status)
            return str(earlier)
        log.warning(
            "Earlier Fuse call %s ended %r; redial_on_retry=True, so queueing a new call.",
            earlier,
            details.status,
        )
        return None
    sent_at = memory.get(QUEUE_SENT_KEY)
    if sent_at:
        if not redial_on_retry:
            raise unanswered_queue_request(
                sent_at, what, "set redial_on_retry=True to queue again regardless."
            )
        log.warning("An earlier try's queue request (%s) went unanswered; redialing as asked.", sent_at)
    return None


def queue_call_once(memory: Memory, send: Callable[[], str]) -> str:
    """Queue one call through ``send``, at most once (see :func:`queue_at_most_once`)."""
    return queue_at_most_once(memory, QUEUE_SENT_KEY, CALL_ID_KEY, now_iso(), send)


def already_sent(memory: Memory) -> bool:
    """Whether a call was queued here, or its request may have been (a repeated callback)."""
    return bool(memory.get(CALL_ID_KEY) or memory.get(QUEUE_SENT_KEY))


# --- a campaign's chunks ---------------------------------------------------------------------------


def resume_chunks(
    memory: Memory, chunks: Sequence[Chunk], *, reupload_unanswered: bool, log: Log
) -> list[ChunkRecord | None]:
    """Each chunk's record from an earlier try, or None where this try must upload it.

    Refuses, before any upload, when an earlier try's chunks do not match this try's (other rows,
    another grouping), or when an earlier upload went unanswered and ``reupload_unanswered`` is off.
    """
    count = len(chunks)
    records: list[ChunkRecord | None] = [memory.get(CHUNK_KEY.format(index=chunk.index)) for chunk in chunks]
    for chunk, record in zip(chunks, records, strict=True):
        sent: ChunkSent | None = None if record else memory.get(CHUNK_SENT_KEY.format(index=chunk.index))
        earlier = record or sent
        if earlier and earlier.get("fingerprint", chunk.fingerprint) != chunk.fingerprint:
            raise changed_between_tries(chunk.index, count)
        if sent and not reupload_unanswered:
            raise unanswered_queue_request(
                sent.get("at"),
                f"the {len(chunk.rows):,} calls of chunk {chunk.index + 1} of {count}",
                "set reupload_unanswered=True to upload that chunk again regardless (it may call "
                "those people twice). Chunks already queued are never uploaded again.",
            )
        if sent:
            log.warning(
                "Chunk %s's earlier upload went unanswered; uploading it again as asked.", chunk.index + 1
            )
    if memory.get(CHUNK_KEY.format(index=count)):
        raise changed_between_tries(count, count)
    resumed = [record for record in records if record]
    if resumed:
        log.info(
            "Resuming: %s of %s chunks (%s calls) were queued by an earlier try and are not uploaded again.",
            len(resumed),
            count,
            f"{sum(len(r['call_ids']) for r in resumed):,}",
        )
    return records


def queue_chunk_once(memory: Memory, chunk: Chunk, send: Callable[[], list[str]]) -> ChunkRecord:
    """Upload one chunk through ``send``, at most once; returns the record a retry resumes from."""
    fingerprint, start = chunk.fingerprint, chunk.start

    def upload() -> ChunkRecord:
        return {"fingerprint": fingerprint, "call_ids": send(), "start": start}

    marker: ChunkSent = {"fingerprint": fingerprint, "at": now_iso()}
    return queue_at_most_once(
        memory, CHUNK_SENT_KEY.format(index=chunk.index), CHUNK_KEY.format(index=chunk.index), marker, upload
    )


# --- refusals ------------------------------------------------------------------------------------


def unanswered_queue_request(sent_at: Any, what: str, remedy: str) -> FuseError:
    """The refusal of a retried try whose predecessor's queue request went unanswered."""
    return FuseError(
        f"An earlier try sent a queue request at {sent_at} and stopped before Fuse answered, so {what} "
        f"may be queued or placed already. Check Fuse (or the callee) first; {remedy}"
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

"""Campaigns: many calls read from rows, validated at once, chunked for bulk upload, and summarised.

Pure: no I/O, no Airflow. ``QueueCallsOperator`` reads the input and talks to Fuse; this module
decides which rows are valid, which rows go into which upload, and what the task reports.

Rows are numbered from 1 in the order given; in a CSV file the header is not counted (row 1 is the
line after it). The task's result is a :class:`CampaignResult`, stored in XCom as this dict::

    {
        "rows": 120,                      # rows read, valid or not
        "calls": [[call_id, row, phone, status, attempts], ...],   # row order, see below
        "calls_count": 117,               # every queued call
        "truncated": False,               # True when "calls" does not list every queued call
        "totals": {"completed": 97, "failed": 20},                  # every call by last known status
        "completed_ratio": 0.8291,        # completed / tracked calls (1.0 when none were tracked)
        "finished": True,                 # every tracked call reached a terminal status
        "untracked": 0,                   # calls Fuse queued without answering their ids
        "unknown_statuses": [],           # statuses Fuse reported that this provider does not know
        "skipped": [[row, field, message], ...],   # rows not queued (skip_invalid=True), first 1,000
        "skipped_count": 3,               # all rows not queued
        "result_path": None,              # where the full per-call table was written (result_path)
    }

``calls`` lists every queued call when there are at most ``MAX_CALLS_IN_RESULT`` (5,000); a larger
campaign lists only its calls not reached (tracked and not completed), the first 5,000 by row, and
sets ``truncated``: so the value stays under 1 MB at any size, and ``totals``, ``completed_ratio``
and ``finished`` still count every call. The whole table goes to the operator's ``result_path``.
``phone`` is masked as queued (``+16***234``), ``status`` is Fuse's (``"unknown"`` when never read)
and ``attempts`` may be None. ``CampaignResult.from_xcom(value)`` reads it back; ``row`` points into
the input.

A chunk that Fuse queued without answering call ids (``{"success": true}``, an empty 202) cannot be
tracked: its rows are listed with ``call_id`` None and status ``"untracked"``, counted in
``untracked`` and left out of ``completed_ratio``, ``pending`` and ``not_reached`` (they were
called: a follow-up campaign must not call them again).
"""

from __future__ import annotations

import ast
import csv
import hashlib
import hmac
import io
import json
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, NamedTuple, TypedDict

from airflow_provider_fuse import exceptions, phone, protocol
from airflow_provider_fuse.fields import ROW_FIELDS
from airflow_provider_fuse.models import UNKNOWN_STATUS, CallRequest, CallStatus
from airflow_provider_fuse.urls import check_call_id
from airflow_provider_fuse.validation import (
    VARIABLE_NAME,
    CallOptions,
    bounded_int,
    check_variable_names,
    number,
)

__all__ = [
    "CampaignCall",
    "CampaignPlan",
    "CampaignQueued",
    "CampaignResult",
    "CampaignXCom",
    "Chunk",
    "RowError",
    "plan_campaign",
    "rows_from_csv",
    "rows_from_value",
]

#: Keeps one chunk's call ids well under the task state store's default 64 KB per value.
MAX_CHUNK_SIZE = 5_000
#: The status of a call Fuse queued without answering its id: nobody asks Fuse about it.
UNTRACKED = "untracked"
#: Rows listed in a validation error (the rest are counted) and kept in the result's ``skipped``.
MAX_ROWS_IN_MESSAGE = 100
MAX_SKIPPED_IN_RESULT = 1_000
#: Calls listed in the result's ``calls``: every one up to this many, else the first this many not
#: reached (about 50 bytes each, at most about 150 with 64-character ids: well under 1 MB).
MAX_CALLS_IN_RESULT = 5_000
UNKNOWN = UNKNOWN_STATUS
# Where rows_from_csv leaves the cells of a row longer than the header, for validation to report.
_EXTRA_CELLS = "\x00extra cells"
# Keys chunk fingerprints when the caller gives no secret: nobody, this process included after a
# restart, can recompute them.
_PROCESS_KEY = secrets.token_bytes(32)


# --- reading rows ------------------------------------------------------------------------------


def rows_from_value(value: Any) -> list[Any]:
    """The rows of ``calls`` given as a list, or as a rendered template of one (JSON or Python)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            try:
                value = ast.literal_eval(text)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                raise exceptions.FuseValidationError(
                    "calls", f"a string of {len(text)} characters", _CALLS_ALLOWED
                ) from None
    if isinstance(value, Mapping) or not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise exceptions.FuseValidationError("calls", f"a {type(value).__name__}", _CALLS_ALLOWED)
    return list(value)


def rows_from_csv(text: str) -> list[dict[str, Any]]:
    """Rows of a campaign CSV: a header row with ``phone_number``; other columns are variables.

    ``caller_id`` and ``post_dial`` columns are optional; empty cells are left out. An error names
    a line or a column, never the content of a cell: the text may be any file on the worker.
    """
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    try:
        return _read_rows(reader)
    except csv.Error as err:  # its messages quote no content, only the rule broken
        raise exceptions.FuseValidationError(
            "calls", f"CSV line {reader.line_num}", f"It cannot be read as CSV ({err})."
        ) from None


def _read_rows(reader: Any) -> list[dict[str, Any]]:
    header = [name.strip() for name in next(reader, [])]
    _check_header(header)
    rows: list[dict[str, Any]] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        row: dict[str, Any] = {"variables": {}}
        if len(cells) > len(header):
            row[_EXTRA_CELLS] = cells[len(header) :]
        for name, cell in zip(header, cells, strict=False):  # short rows: missing cells are empty
            if cell.strip() == "":
                continue
            if name in ROW_FIELDS:
                row[name] = cell.strip()
            else:
                row["variables"][name] = cell
        rows.append(row)
    return rows


def _check_header(header: list[str]) -> None:
    if "phone_number" not in header:  # maybe no campaign file at all: its first line is not shown
        raise exceptions.FuseValidationError(
            "calls",
            f"a CSV file whose first line holds {len(header)} column(s), none named phone_number",
            "The first line names the columns: phone_number, optionally caller_id and post_dial, "
            "and every other column is a variable.",
        )
    for name in header:
        if header.count(name) > 1 or (name not in ROW_FIELDS and not VARIABLE_NAME.fullmatch(name)):
            raise exceptions.FuseValidationError(
                "calls",
                f"CSV column {name[:70]!r}",
                "Column names are unique; variable columns start with a letter or '_', then letters, "
                "digits or '_' (at most 64).",
            )
    check_variable_names(name for name in header if name not in ROW_FIELDS)


_CALLS_ALLOWED = (
    "Give a list of dicts (phone_number, optional caller_id, post_dial and variables), an XComArg "
    "returning one, or the absolute path of a CSV file."
)


# --- validating and chunking -------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """Why one row cannot be queued; ``message`` names the field, the masked value and the rule."""

    row: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


def list_rows(errors: Sequence[RowError]) -> str:
    """One line per row (the first hundred), then the rest counted by field."""
    listed = "\n".join(f"  {error}" for error in errors[:MAX_ROWS_IN_MESSAGE])
    rest = Counter(error.field for error in errors[MAX_ROWS_IN_MESSAGE:])
    if rest:
        by_field = ", ".join(f"{name} {count:,}" for name, count in rest.most_common())
        listed += f"\n  ... and {rest.total():,} more rows ({by_field})"
    return listed


#: ``[row, field, message]`` of a row not queued, as XCom holds it.
SkippedRow = list[Any]


class CampaignQueued(TypedDict):
    """What a campaign task pushes before it waits (XCom ``campaign_queued``), small at any size.

    Each chunk's call ids and rows are in XComs of their own (:class:`ChunkCalls`). Release 0.1.0
    pushed ``call_ids``, ``call_rows`` (in row order) and ``untracked`` here instead: a task
    deferred by one of them still concludes (:meth:`CampaignResult.tracked`).
    """

    rows: int
    chunks: int  # uploads: their XComs are numbered 0 to chunks - 1
    untracked_chunks: list[int]  # uploads Fuse queued without answering ids
    skipped: list[SkippedRow]
    skipped_count: int


class ChunkCalls(TypedDict):
    """One upload's rows and masked numbers, in upload order (beside its call ids, in XCom)."""

    rows: list[str | list[int]]  # packed, see pack_ids
    phones: list[str]


class QueuedChunk(NamedTuple):
    """One upload as the result is built from it: ids (None when Fuse answered none), rows, numbers."""

    call_ids: list[str] | None
    rows: list[int]
    phones: list[str]

    @classmethod
    def from_xcom(cls, call_ids: Any, calls: ChunkCalls | Mapping[str, Any], untracked: bool) -> QueuedChunk:
        rows = [int(row) for row in unpack_ids(calls.get("rows") or ())]
        return cls(None if untracked else unpack_ids(call_ids or ()), rows, list(calls.get("phones") or ()))


class CampaignXCom(TypedDict):
    """A campaign task's result as XCom holds it (see the module docstring)."""

    rows: int
    calls: list[list[Any]]
    calls_count: int
    truncated: bool
    totals: dict[str, int]
    completed_ratio: float
    finished: bool
    skipped: list[SkippedRow]
    skipped_count: int
    untracked: int
    unknown_statuses: list[str]
    result_path: str | None


@dataclass(frozen=True)
class ValidRow:
    """A row that passed validation, with the key of the upload group it belongs to."""

    row: int
    request: CallRequest
    group: tuple[str, ...]


@dataclass(frozen=True)
class Chunk:
    """One bulk upload: rows sharing one dialing window, at most ``chunk_size`` of them.

    ``key`` keys the fingerprint (:func:`fingerprint_key`); it is never shown.
    """

    index: int
    rows: tuple[ValidRow, ...]
    key: bytes = field(default=_PROCESS_KEY, repr=False, compare=False)

    @property
    def requests(self) -> list[CallRequest]:
        return [row.request for row in self.rows]

    @property
    def start(self) -> int | None:
        """When Fuse may start dialing this chunk's calls (None: at once)."""
        return self.rows[0].request.start_timestamp

    @cached_property
    def fingerprint(self) -> str:
        """A keyed digest of what the upload asks for, so a retry can tell the same chunk from another.

        It is stored in the task state store beside masked numbers: unkeyed, a brute force over the
        hidden digits would confirm the full number (and PCI variables). Keyed, it confirms nothing.
        """
        content = [[row.request.tel_uri, row.request.variables] for row in self.rows]
        encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str).encode()
        return hmac.new(self.key, encoded, hashlib.sha256).hexdigest()[:32]


def fingerprint_key(secret: str | None) -> bytes:
    """The key of chunk fingerprints, derived from a secret the metadata database does not hold.

    The operator gives the connection's developer key, so every try of a task derives the same key
    (a key rotated between tries makes a retry refuse, as if the rows had changed: nothing is sent).
    Without a secret, a key random to this process: fingerprints then match within it only.
    """
    if secret is None:
        return _PROCESS_KEY
    return hmac.new(
        secret.encode(), b"airflow-provider-fuse: campaign chunk fingerprint", hashlib.sha256
    ).digest()


@dataclass(frozen=True)
class CampaignPlan:
    """What a campaign will upload: valid rows in chunks, and the rows skipped."""

    total_rows: int
    chunks: tuple[Chunk, ...]
    skipped: tuple[RowError, ...] = ()

    @property
    def call_count(self) -> int:
        return sum(len(chunk.rows) for chunk in self.chunks)

    def queued_chunks(self, chunk_call_ids: Sequence[Sequence[str] | None]) -> list[QueuedChunk]:
        """Each upload's ids (None where Fuse queued it without answering them), rows and numbers."""
        return [
            QueuedChunk(
                None if ids is None else list(ids), [row.row for row in chunk.rows], self.phones(chunk)
            )
            for chunk, ids in zip(self.chunks, chunk_call_ids, strict=True)
        ]

    @staticmethod
    def phones(chunk: Chunk) -> list[str]:
        return [row.request.masked_phone for row in chunk.rows]

    @staticmethod
    def chunk_calls(chunk: Chunk) -> ChunkCalls:
        """What XCom keeps beside an upload's call ids: its rows (packed) and masked numbers."""
        return {"rows": pack_ids(row.row for row in chunk.rows), "phones": CampaignPlan.phones(chunk)}

    def calling_notes(self) -> list[str]:
        """What calling hours changed, once per upload group (rows of a group share the change)."""
        sizes = Counter(row.group for chunk in self.chunks for row in chunk.rows)
        notes = []
        for chunk in self.chunks:
            first = chunk.rows[0]
            size = sizes.pop(first.group, 0)
            if size and first.request.calling_notes:
                zones = ", ".join(first.group) if len(first.group) <= 3 else f"{len(first.group)} zones"
                notes.append(f"{size:,} call(s) in {zones}: " + " ".join(first.request.calling_notes))
        return notes

    def result_queued(self, chunks: Sequence[QueuedChunk]) -> CampaignResult:
        """The result of a task that does not wait: every tracked call ``queued``, the rest ``untracked``."""
        return CampaignResult(
            self.total_rows, tuple(campaign_calls(chunks, {}, protocol.QUEUED)), self.skipped
        )

    def queued(self, untracked_chunks: Sequence[int] = ()) -> CampaignQueued:
        """What a task pushes before it waits: rows read, uploads (their ids and rows are in XComs of
        their own), those Fuse answered without ids, and the rows skipped."""
        return {
            "rows": self.total_rows,
            "chunks": len(self.chunks),
            "untracked_chunks": list(untracked_chunks),
            "skipped": [[e.row, e.field, e.message] for e in self.skipped[:MAX_SKIPPED_IN_RESULT]],
            "skipped_count": len(self.skipped),
        }


def plan_campaign(
    rows: Sequence[Any],
    settings: Mapping[str, Any],
    *,
    chunk_size: int,
    skip_invalid: bool = False,
    allow_duplicates: bool = False,
    default_region: str = "US",
    variables_field: str = protocol.DEFAULT_VARIABLES_FIELD,
    secret: str | None = None,
    now: datetime,
) -> CampaignPlan:
    """Validate every row, then group and chunk the valid ones; raise before anything is sent.

    ``settings`` are the :class:`~airflow_provider_fuse.validation.CallOptions` shared by every row
    (``start_timestamp`` to ``timezone``), as rendered. A bad setting is raised once, before any
    row is read; bad rows are raised together (:class:`FuseInvalidRowsError`) unless ``skip_invalid``.
    ``variables_field`` is the connection's (no variable may take its name); ``secret`` keys the
    chunk fingerprints (:func:`fingerprint_key`). Chunks depend only on the rows, settings and
    secret, so a retried task computes the same ones.
    """
    options = CallOptions.validate(**settings, now=now)
    valid: list[ValidRow] = []
    errors: list[RowError] = []
    first_row_of: dict[tuple[str, str | None], int] = {}
    for index, row in enumerate(rows, start=1):
        checked = _validate_row(index, row, options, default_region, variables_field, now)
        if isinstance(checked, ValidRow):
            callee = (checked.request.phone_number, checked.request.post_dial)
            first = first_row_of.setdefault(callee, index)
            if first != index and not allow_duplicates:
                checked = _duplicate(checked, first)
        if isinstance(checked, ValidRow):
            valid.append(checked)
        else:
            errors.append(checked)
    if errors and not skip_invalid:
        raise _invalid_rows(
            errors,
            len(rows),
            "Nothing was sent. Fix these rows, or set skip_invalid=True to queue the "
            "valid rows and list the skipped ones in the result:",
        )
    if errors and not valid:
        raise _invalid_rows(errors, len(rows), "No row is valid, so nothing was sent:")
    return CampaignPlan(len(rows), _chunk(valid, chunk_size, fingerprint_key(secret)), tuple(errors))


def _invalid_rows(errors: Sequence[RowError], total: int, advice: str) -> exceptions.FuseInvalidRowsError:
    return exceptions.FuseInvalidRowsError(errors, total, f"{advice}\n{list_rows(errors)}")


def _validate_row(
    index: int, row: Any, options: CallOptions, region: str, variables_field: str, now: datetime
) -> ValidRow | RowError:
    if not isinstance(row, Mapping):
        return RowError(
            index, "row", f"A row is a dict with {', '.join(ROW_FIELDS)}; got a {type(row).__name__}."
        )
    if _EXTRA_CELLS in row:
        return RowError(
            index,
            "row",
            f"{len(row[_EXTRA_CELLS])} more cell(s) than the CSV header has columns "
            '(a value holding a comma needs double quotes: "Smith, Ann").',
        )
    unknown = [str(key) for key in row if key not in ROW_FIELDS]
    if unknown:
        return RowError(
            index, unknown[0], f"Unknown key(s) {unknown[:5]}: a row has {', '.join(ROW_FIELDS)} only."
        )
    try:
        request = CallRequest.with_options(
            options,
            **{"phone_number": None, **row},
            default_region=region,
            variables_field=variables_field,
            now=now,
        )
    except exceptions.FuseValidationError as error:
        return RowError(index, error.field, str(error))
    return ValidRow(index, request, _group(request, options))


def _duplicate(row: ValidRow, first: int) -> RowError:
    return RowError(
        row.row,
        "phone_number",
        f"Duplicate {row.request.masked_phone}: row {first} has the same number, so this person would be "
        "called twice. Remove the row, or set allow_duplicates=True.",
    )


def _group(request: CallRequest, options: CallOptions) -> tuple[str, ...]:
    """Rows of one group share their dialing window: the same zones give the same calling hours."""
    if options.calling_hours is None:
        return ()
    if options.timezone is not None:
        return (options.timezone,)
    return phone.time_zones(request.phone_number)


def _chunk(rows: Iterable[ValidRow], size: int, key: bytes) -> tuple[Chunk, ...]:
    """Groups in order of first appearance, each cut into chunks of ``size`` rows in row order."""
    groups: dict[tuple[str, ...], list[ValidRow]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    chunks: list[Chunk] = []
    for members in groups.values():
        for start in range(0, len(members), size):
            chunks.append(Chunk(len(chunks), tuple(members[start : start + size]), key))
    return tuple(chunks)


# --- settings given as rendered templates ------------------------------------------------------


def chunk_size_setting(value: Any) -> int:
    """Rows per bulk upload."""
    return bounded_int("chunk_size", value, (1, MAX_CHUNK_SIZE))


def ratio_setting(value: Any) -> float:
    """The success policy: the share of queued calls that must complete."""
    allowed = "A number from 0.0 to 1.0."
    ratio = number("min_completed_ratio", value, allowed)
    if not 0.0 <= ratio <= 1.0:
        raise exceptions.FuseValidationError("min_completed_ratio", repr(value)[:40], allowed)
    return ratio


# --- compact lists, and where a trigger finds its calls ------------------------------------------


def pack_ids(ids: Iterable[str | int]) -> list[str | list[int]]:
    """Runs of consecutive decimal ids as ``[first, count]``, other ids as strings.

    Bulk uploads usually get consecutive ids, so 10,000 of them pack into a few bytes of trigger
    arguments (some databases cap those at 64 KB). Every id must be a usable call id
    (:func:`~airflow_provider_fuse.urls.check_call_id`), else ``FuseValidationError``.
    """
    packed: list[str | list[int]] = []
    for item in (check_call_id(value) for value in ids):
        last = packed[-1] if packed else None
        if item.isdigit() and item == str(int(item)):
            if isinstance(last, list) and last[0] + last[1] == int(item):
                last[1] += 1
            else:
                packed.append([int(item), 1])
        else:
            packed.append(item)
    return [str(item[0]) if isinstance(item, list) and item[1] == 1 else item for item in packed]


def unpack_ids(packed: Iterable[str | int | Sequence[int]]) -> list[str]:
    """The ids :func:`pack_ids` packed; plain lists of ids come back unchanged."""
    ids: list[str] = []
    for item in packed:
        if isinstance(item, (list, tuple)):
            first, count = item
            ids.extend(str(first + n) for n in range(count))
        else:
            ids.append(str(item))
    return ids


def ids_digest(ids: Iterable[str]) -> str:
    """A short digest of call ids in order: a trigger checks that XCom still holds what it was handed."""
    digest = hashlib.sha256()
    for call_id in ids:
        digest.update(call_id.encode() + b"\n")
    return digest.hexdigest()[:16]


class CallsInXCom(TypedDict):
    """Where a ``FuseCallsTrigger`` reads its calls: one XCom per upload, of its own task instance.

    Trigger arguments stay a few hundred bytes at any campaign size (some databases keep them in a
    64 KB column). ``key`` holds ``{index}``; ``calls`` and ``digest`` (:func:`ids_digest`) say what
    the XComs held when the task deferred; ``starts`` lists ``[unix_time, upload indexes]`` (packed)
    of uploads that may not start before then.
    """

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    key: str
    chunks: int
    calls: int
    digest: str
    starts: list[list[Any]]


# --- the result ---------------------------------------------------------------------------------


def _row(call: CampaignCall) -> int:
    return call.row


def _untracked_calls(rows: Iterable[Sequence[Any]]) -> list[CampaignCall]:
    """``[row, masked phone]`` pairs as result entries of calls Fuse queued without ids."""
    return [CampaignCall(None, int(row), phone, UNTRACKED, None) for row, phone in rows]


def campaign_calls(
    chunks: Iterable[QueuedChunk],
    states: Mapping[str, Sequence[Any]],
    default: str = UNKNOWN,
    row_states: Mapping[int, Sequence[Any]] | None = None,
) -> list[CampaignCall]:
    """Every queued call in row order, its status and attempts from ``states`` (the tracker's
    ``[call_id, status, attempts, phone]`` by call id); ``default`` for a call never read. A call
    queued without its id is ``untracked``, unless ``row_states`` (``[row, status, attempts]`` by
    row: a result_url callback matched by number) has its outcome."""
    calls: list[CampaignCall] = []
    for call_ids, rows, phones in chunks:
        if call_ids is None:
            for row, masked in zip(rows, phones, strict=True):
                reported = (row_states or {}).get(row)
                status, attempts = (str(reported[1]), reported[2]) if reported else (UNTRACKED, None)
                calls.append(CampaignCall(None, row, masked, status, attempts))
            continue
        for call_id, row, masked in zip(call_ids, rows, phones, strict=True):
            state = states.get(call_id)
            status = state[1] if state and state[1] else default
            calls.append(CampaignCall(call_id, row, masked, str(status), state[2] if state else None))
    return sorted(calls, key=_row)


class CampaignCall(NamedTuple):
    """One queued call in the result: which row it came from and how it ended.

    ``call_id`` is None (and ``status`` ``"untracked"``) when Fuse queued the call without its id.
    """

    call_id: str | None
    row: int
    phone: str | None
    status: str
    attempts: int | None

    @property
    def reached(self) -> bool:
        return CallStatus.succeeded(self.status)

    @property
    def ended(self) -> bool:
        return CallStatus.is_terminal(self.status)

    @property
    def tracked(self) -> bool:
        return self.status != UNTRACKED


@dataclass(frozen=True)
class CampaignResult:
    """A campaign's outcome, kept under 1 MB in XCom at any size (see the module docstring).

    Downstream tasks branch on it: ``CampaignResult.from_xcom(ti.xcom_pull(...)).not_reached``.
    ``counts`` (calls by status) is set when ``calls`` lists only some of them (``truncated``): the
    totals, ratio and ``finished`` then come from it, and ``reached``, ``not_reached``, ``pending``
    and ``by_row()`` from the calls listed.
    """

    rows: int
    calls: tuple[CampaignCall, ...]
    skipped: tuple[RowError, ...] = ()
    skipped_count: int = 0
    #: Statuses Fuse reported that this provider does not know (kept as-is, not ended; a call still
    #: reporting one past its dialing window and grace ends ``unknown``).
    unknown_statuses: tuple[str, ...] = ()
    counts: Mapping[str, int] | None = None
    #: Where the whole per-call table was written (the operator's ``result_path``), as shown.
    result_path: str | None = None

    @property
    def totals(self) -> dict[str, int]:
        """Every queued call by last known status."""
        return dict(self.counts) if self.counts is not None else dict(Counter(c.status for c in self.calls))

    @property
    def call_count(self) -> int:
        """Every queued call, listed or not."""
        return sum(self.totals.values())

    @property
    def truncated(self) -> bool:
        """Whether ``calls`` lists fewer calls than were queued (the full table is at ``result_path``)."""
        return self.call_count > len(self.calls)

    @property
    def reached(self) -> list[CampaignCall]:
        """Calls that completed (of those listed)."""
        return [call for call in self.calls if call.reached]

    @property
    def not_reached(self) -> list[CampaignCall]:
        """Tracked calls that did not complete: failed, rejected, canceled, or still open at the deadline."""
        return [call for call in self.calls if call.tracked and not call.reached]

    @property
    def pending(self) -> list[CampaignCall]:
        """Tracked calls not ended when the task stopped waiting (or did not wait)."""
        return [call for call in self.calls if call.tracked and not call.ended]

    @property
    def untracked(self) -> list[CampaignCall]:
        """Calls Fuse queued without answering their ids: queued, outcome unknown to this task."""
        return [call for call in self.calls if not call.tracked]

    @property
    def completed_ratio(self) -> float:
        """Completed calls over tracked calls; 1.0 when there were none (nothing failed)."""
        totals = self.totals
        tracked = sum(totals.values()) - totals.get(UNTRACKED, 0)
        return self._reached_count / tracked if tracked else 1.0

    @property
    def finished(self) -> bool:
        return all(status == UNTRACKED or CallStatus.is_terminal(status) for status in self.totals)

    @property
    def _reached_count(self) -> int:
        return sum(count for status, count in self.totals.items() if CallStatus.succeeded(status))

    def by_row(self) -> dict[int, CampaignCall]:
        return {call.row: call for call in self.calls}

    def describe(self) -> str:
        """``"97 of 117 calls completed (82.9%): failed 20"``, for logs and errors."""
        totals = self.totals
        others = ", ".join(
            f"{status} {count:,}"
            for status, count in sorted(totals.items())
            if status not in (protocol.COMPLETED, UNTRACKED)
        )
        untracked = totals.get(UNTRACKED, 0)
        tracked = sum(totals.values()) - untracked
        text = f"{self._reached_count:,} of {tracked:,} calls completed ({self.completed_ratio:.1%})"
        text += f": {others}" if others else ""
        if untracked:
            text += f"; {untracked:,} more queued without tracking (Fuse answered no call ids)"
        return text

    def to_xcom(self) -> CampaignXCom:
        """The XCom value: every call up to ``MAX_CALLS_IN_RESULT``, else the first calls not reached."""
        listed = self.calls
        if len(listed) > MAX_CALLS_IN_RESULT:
            listed = tuple(self.not_reached[:MAX_CALLS_IN_RESULT])
        return {
            "rows": self.rows,
            "calls": [list(call) for call in listed],
            "calls_count": self.call_count,
            "truncated": self.call_count > len(listed),
            "totals": self.totals,
            "completed_ratio": round(self.completed_ratio, 4),
            "finished": self.finished,
            "skipped": [[e.row, e.field, e.message] for e in self.skipped[:MAX_SKIPPED_IN_RESULT]],
            "skipped_count": max(self.skipped_count, len(self.skipped)),
            "untracked": self.totals.get(UNTRACKED, 0),
            "unknown_statuses": list(self.unknown_statuses),
            "result_path": self.result_path,
        }

    @classmethod
    def from_xcom(cls, value: Mapping[str, Any]) -> CampaignResult:
        """Read the dict a campaign task returned (derived keys are recomputed from ``calls``, unless
        ``calls`` lists only some calls: then ``totals`` counts them all)."""
        totals = value.get("totals") if value.get("truncated") else None
        return cls(
            rows=int(value.get("rows") or 0),
            calls=tuple(
                CampaignCall(None if c[0] is None else str(c[0]), int(c[1]), c[2], str(c[3]), c[4])
                for c in value.get("calls") or ()
            ),
            skipped=tuple(RowError(int(s[0]), str(s[1]), str(s[2])) for s in value.get("skipped") or ()),
            skipped_count=int(value.get("skipped_count") or 0),
            unknown_statuses=tuple(str(status) for status in value.get("unknown_statuses") or ()),
            counts=None if totals is None else {str(k): int(n) for k, n in dict(totals).items()},
            result_path=value.get("result_path"),
        )

    @classmethod
    def tracked(
        cls,
        states: Sequence[Sequence[Any]],
        queued: Mapping[str, Any],
        unknown_statuses: Iterable[str] = (),
        chunks: Sequence[QueuedChunk] | None = None,
        row_states: Sequence[Sequence[Any]] = (),
    ) -> CampaignResult:
        """Join the tracker's ``[call_id, status, attempts, phone]`` states with what was queued:
        ``chunks`` (read back from XCom, see :class:`CampaignQueued`), or, from a task deferred by
        release 0.1.0, the rows in ``queued`` (one per state, in order). ``row_states``:
        ``[row, status, attempts]`` of calls queued without ids whose callback reported them."""
        if chunks is not None:
            by_row = {int(state[0]): state for state in row_states}
            calls = campaign_calls(chunks, {str(state[0]): state for state in states}, row_states=by_row)
        else:
            rows = [int(row) for row in unpack_ids(queued.get("call_rows") or ())]
            calls = [
                CampaignCall(str(state[0]), row, state[3], str(state[1] or UNKNOWN), state[2])
                for row, state in zip(rows, states, strict=True)
            ]
            calls = sorted(calls + _untracked_calls(queued.get("untracked") or ()), key=_row)
        return cls(
            int(queued.get("rows") or 0),
            tuple(calls),
            tuple(RowError(int(r), str(f), str(m)) for r, f, m in queued.get("skipped") or ()),
            int(queued.get("skipped_count") or 0),
            tuple(unknown_statuses),
        )

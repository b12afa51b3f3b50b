"""Campaigns: many calls read from rows, validated at once, chunked for bulk upload, and summarised.

Pure: no I/O, no Airflow. ``QueueCallsOperator`` reads the input and talks to Fuse; this module
decides which rows are valid, which rows go into which upload, and what the task reports.

Rows are numbered from 1 in the order given; in a CSV file the header is not counted (row 1 is the
line after it). The task's result is a :class:`CampaignResult`, stored in XCom as this dict::

    {
        "rows": 120,                      # rows read, valid or not
        "calls": [[call_id, row, phone, status, attempts], ...],   # one per queued call, row order
        "totals": {"completed": 97, "failed": 20},                  # calls by last known status
        "completed_ratio": 0.8291,        # completed / tracked calls (1.0 when none were tracked)
        "finished": True,                 # every tracked call reached a terminal status
        "untracked": 0,                   # calls Fuse queued without answering their ids
        "unknown_statuses": [],           # statuses Fuse reported that this provider does not know
        "skipped": [[row, field, message], ...],   # rows not queued (skip_invalid=True), first 1,000
        "skipped_count": 3,               # all rows not queued
    }

``phone`` is masked, as Fuse reports it (``16***234``; as queued, ``+16***234``, when the
task did not wait), ``status`` is Fuse's (``"unknown"`` when never read) and ``attempts`` may be
None. ``CampaignResult.from_xcom(value)`` reads it back; ``row`` points into the input.

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
    """What a campaign task pushes before it waits (XCom ``campaign_queued``): ids and rows in runs."""

    rows: int
    call_ids: list[str | list[int]]
    call_rows: list[str | list[int]]
    skipped: list[SkippedRow]
    skipped_count: int
    untracked: list[list[Any]]  # [row, masked phone] of calls queued without ids


class CampaignXCom(TypedDict):
    """A campaign task's result as XCom holds it (see the module docstring)."""

    rows: int
    calls: list[list[Any]]
    totals: dict[str, int]
    completed_ratio: float
    finished: bool
    skipped: list[SkippedRow]
    skipped_count: int
    untracked: int
    unknown_statuses: list[str]


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

    def calls_in_row_order(self, chunk_call_ids: Sequence[Sequence[str] | None]) -> list[tuple[int, str]]:
        """``(row, call_id)`` of every tracked call, given each chunk's call ids in upload order
        (None for a chunk Fuse queued without answering ids)."""
        pairs = [
            (row.row, call_id)
            for chunk, call_ids in zip(self.chunks, chunk_call_ids, strict=True)
            if call_ids is not None
            for row, call_id in zip(chunk.rows, call_ids, strict=True)
        ]
        return sorted(pairs)

    def untracked_rows(self, chunk_call_ids: Sequence[Sequence[str] | None]) -> list[int]:
        """The rows of the chunks Fuse queued without answering ids (None in ``chunk_call_ids``)."""
        return sorted(
            row.row
            for chunk, call_ids in zip(self.chunks, chunk_call_ids, strict=True)
            if call_ids is None
            for row in chunk.rows
        )

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

    def result_queued(
        self, calls: Sequence[tuple[int, str]], untracked: Sequence[int] = ()
    ) -> CampaignResult:
        """The result of a task that does not wait: every tracked call ``queued``, the rest ``untracked``."""
        masked = self._masked_phones()
        queued = [CampaignCall(call_id, row, masked[row], protocol.QUEUED, None) for row, call_id in calls]
        return CampaignResult(
            self.total_rows,
            tuple(sorted(queued + _untracked_calls([row, masked[row]] for row in untracked), key=_row)),
            self.skipped,
        )

    def queued(self, calls: Sequence[tuple[int, str]], untracked: Sequence[int] = ()) -> CampaignQueued:
        """What a task pushes before it waits: rows read, each call's id and row, rows skipped, and
        the rows of calls queued without ids (with their masked numbers).

        Ids and rows are packed in runs (:func:`pack_ids`), so this stays small at 10,000 calls.
        """
        masked = self._masked_phones()
        return {
            "rows": self.total_rows,
            "call_ids": pack_ids(call_id for _, call_id in calls),
            "call_rows": pack_ids(row for row, _ in calls),
            "skipped": [[e.row, e.field, e.message] for e in self.skipped[:MAX_SKIPPED_IN_RESULT]],
            "skipped_count": len(self.skipped),
            "untracked": [[row, masked[row]] for row in untracked],
        }

    def _masked_phones(self) -> dict[int, str]:
        return {row.row: row.request.masked_phone for chunk in self.chunks for row in chunk.rows}


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


# --- compact lists for trigger arguments ---------------------------------------------------------


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


# --- the result ---------------------------------------------------------------------------------


def _row(call: CampaignCall) -> int:
    return call.row


def _untracked_calls(rows: Iterable[Sequence[Any]]) -> list[CampaignCall]:
    """``[row, masked phone]`` pairs as result entries of calls Fuse queued without ids."""
    return [CampaignCall(None, int(row), phone, UNTRACKED, None) for row, phone in rows]


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
    """A campaign's outcome, small enough for XCom at 10,000 calls (about 50 bytes a call).

    Downstream tasks branch on it: ``CampaignResult.from_xcom(ti.xcom_pull(...)).not_reached``.
    """

    rows: int
    calls: tuple[CampaignCall, ...]
    skipped: tuple[RowError, ...] = ()
    skipped_count: int = 0
    #: Statuses Fuse reported that this provider does not know (kept as-is, not ended; a call still
    #: reporting one past its dialing window and grace ends ``unknown``).
    unknown_statuses: tuple[str, ...] = ()

    @property
    def totals(self) -> dict[str, int]:
        """Calls by last known status."""
        return dict(Counter(call.status for call in self.calls))

    @property
    def reached(self) -> list[CampaignCall]:
        """Calls that completed."""
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
        tracked = len(self.calls) - len(self.untracked)
        return len(self.reached) / tracked if tracked else 1.0

    @property
    def finished(self) -> bool:
        return not self.pending

    def by_row(self) -> dict[int, CampaignCall]:
        return {call.row: call for call in self.calls}

    def describe(self) -> str:
        """``"97 of 117 calls completed (82.9%): failed 20"``, for logs and errors."""
        others = ", ".join(
            f"{status} {count:,}"
            for status, count in sorted(self.totals.items())
            if status not in (protocol.COMPLETED, UNTRACKED)
        )
        untracked = len(self.untracked)
        tracked = len(self.calls) - untracked
        text = f"{len(self.reached):,} of {tracked:,} calls completed ({self.completed_ratio:.1%})"
        text += f": {others}" if others else ""
        if untracked:
            text += f"; {untracked:,} more queued without tracking (Fuse answered no call ids)"
        return text

    def to_xcom(self) -> CampaignXCom:
        return {
            "rows": self.rows,
            "calls": [list(call) for call in self.calls],
            "totals": self.totals,
            "completed_ratio": round(self.completed_ratio, 4),
            "finished": self.finished,
            "skipped": [[e.row, e.field, e.message] for e in self.skipped[:MAX_SKIPPED_IN_RESULT]],
            "skipped_count": max(self.skipped_count, len(self.skipped)),
            "untracked": len(self.untracked),
            "unknown_statuses": list(self.unknown_statuses),
        }

    @classmethod
    def from_xcom(cls, value: Mapping[str, Any]) -> CampaignResult:
        """Read the dict a campaign task returned (derived keys are recomputed, not trusted)."""
        return cls(
            rows=int(value.get("rows") or 0),
            calls=tuple(
                CampaignCall(None if c[0] is None else str(c[0]), int(c[1]), c[2], str(c[3]), c[4])
                for c in value.get("calls") or ()
            ),
            skipped=tuple(RowError(int(s[0]), str(s[1]), str(s[2])) for s in value.get("skipped") or ()),
            skipped_count=int(value.get("skipped_count") or 0),
            unknown_statuses=tuple(str(status) for status in value.get("unknown_statuses") or ()),
        )

    @classmethod
    def tracked(
        cls,
        states: Sequence[Sequence[Any]],
        queued: CampaignQueued | Mapping[str, Any],
        unknown_statuses: Iterable[str] = (),
    ) -> CampaignResult:
        """Join the tracker's ``[call_id, status, attempts, phone]`` states with :meth:`CampaignPlan.queued`."""
        rows = [int(row) for row in unpack_ids(queued.get("call_rows") or ())]
        calls = [
            CampaignCall(str(state[0]), row, state[3], str(state[1] or UNKNOWN), state[2])
            for row, state in zip(rows, states, strict=True)
        ]
        return cls(
            int(queued.get("rows") or 0),
            tuple(sorted(calls + _untracked_calls(queued.get("untracked") or ()), key=_row)),
            tuple(RowError(int(r), str(f), str(m)) for r, f, m in queued.get("skipped") or ()),
            int(queued.get("skipped_count") or 0),
            tuple(unknown_statuses),
        )

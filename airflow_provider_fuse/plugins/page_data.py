"""What a task page shows, read from the XComs of one task instance (no Airflow import, no I/O).

A call task (``QueueCallOperator``, ``FuseCallSensor``) returns ``CallDetails.to_dict()`` and pushes
``call_id``; a campaign task (``QueueCallsOperator``) returns a ``CampaignXCom`` (or pushes it under
``campaign_result`` when it fails) after ``campaign_queued``; the plugin records result callbacks under
``fuse_callbacks*`` (:mod:`~airflow_provider_fuse.callbacks`). Every value here is already masked by
the code that wrote it; numbers are masked again on the way out all the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from airflow_provider_fuse.callbacks import HEAD_KEY, CallbackEntry
from airflow_provider_fuse.campaign import CampaignResult
from airflow_provider_fuse.links import CALL_ID_XCOM_KEY
from airflow_provider_fuse.models import CallStatus
from airflow_provider_fuse.operators.fuse import QUEUED_XCOM_KEY, RESULT_XCOM_KEY
from airflow_provider_fuse.phone import mask_phone

RETURN_VALUE = "return_value"
#: Operators whose page is a call page or a campaign page even before they pushed anything.
CALL_OPERATORS = frozenset({"QueueCallOperator", "FuseCallSensor"})
CAMPAIGN_OPERATORS = frozenset({"QueueCallsOperator"})


@dataclass(frozen=True)
class TaskRef:
    """The task instance a page is about, as the metadata database has it."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    state: str | None
    operator: str | None


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    label: str


@dataclass(frozen=True)
class CallView:
    """One call: its last known details (None until any arrived) and its timeline, oldest first."""

    task: TaskRef
    call_id: str | None
    status: str | None
    phone: str | None
    attempts: int | None
    max_attempts: int | None
    duration: int | None
    timeline: list[TimelineEvent]
    source: str  # where the details come from: "task result", "callback", or "" (none yet)


@dataclass(frozen=True)
class CampaignView:
    """A campaign: its result once concluded (else what was queued), and when its calls ended."""

    task: TaskRef
    result: CampaignResult | None
    queued_rows: int | None
    ended: list[datetime] = field(default_factory=list)  # one per call a callback reported ended
    callbacks: int = 0


@dataclass(frozen=True)
class EmptyView:
    """A task instance with nothing to show: not a Fuse task, or a Fuse task with no data yet."""

    task: TaskRef
    fuse_task: bool


View = CallView | CampaignView | EmptyView


def callback_entries(xcoms: Mapping[str, Any]) -> list[CallbackEntry]:
    """The recorded callbacks, oldest first (the head and its chunks, see ``callbacks.py``)."""
    head = xcoms.get(HEAD_KEY)
    count = (_int(head.get("count")) if isinstance(head, Mapping) else None) or 0
    entries = [
        entry
        for key, chunk in xcoms.items()
        if key.startswith(HEAD_KEY + "_") and isinstance(chunk, list)
        for entry in chunk
        if isinstance(entry, Mapping)
        and isinstance(entry.get("details"), Mapping)
        and 0 <= (-1 if _int(entry.get("seq")) is None else entry["seq"]) < count
    ]
    return sorted((cast(CallbackEntry, entry) for entry in entries), key=lambda entry: entry["seq"])


def build_view(task: TaskRef, xcoms: Mapping[str, Any]) -> View:
    """The page of ``task`` from its XComs by key: a campaign, a call, or nothing to show."""
    returned = xcoms.get(RETURN_VALUE)
    campaign = _campaign_value(returned) or _campaign_value(xcoms.get(RESULT_XCOM_KEY))
    entries = callback_entries(xcoms)
    queued = xcoms.get(QUEUED_XCOM_KEY)
    if campaign is not None or isinstance(queued, Mapping) or task.operator in CAMPAIGN_OPERATORS:
        return _campaign_view(task, campaign, queued, entries)
    details = returned if _is_call_details(returned) else None
    call_id = _text(xcoms.get(CALL_ID_XCOM_KEY)) or (_text(details.get("call_id")) if details else None)
    if details is not None or call_id or entries or task.operator in CALL_OPERATORS:
        return _call_view(task, details, call_id, entries)
    return EmptyView(task, fuse_task=False)


def _campaign_view(
    task: TaskRef, value: Mapping[str, Any] | None, queued: Any, entries: list[CallbackEntry]
) -> View:
    result = _campaign_result(value)
    rows = _int(queued.get("rows")) if isinstance(queued, Mapping) else None
    if result is None and rows is None and not entries:
        return EmptyView(task, fuse_task=True)
    ended: dict[str, datetime] = {}
    for entry in entries:
        details = entry["details"]
        at = _when(details.get("ended_at")) or _when(entry.get("received_at"))
        if CallStatus.is_terminal(str(details.get("status"))) and at is not None:
            ended[str(details.get("call_id") or f"#{entry['seq']}")] = at
    return CampaignView(task, result, rows, sorted(ended.values()), len(entries))


def _call_view(
    task: TaskRef, returned: Mapping[str, Any] | None, call_id: str | None, entries: list[CallbackEntry]
) -> View:
    mine = [e for e in entries if e["details"].get("call_id") in (None, call_id)]
    latest: Mapping[str, Any] | None = returned or (mine[-1]["details"] if mine else None)
    if latest is None and not call_id:
        return EmptyView(task, fuse_task=True)
    details: Mapping[str, Any] = latest or {}
    phone = details.get("phone_number")
    return CallView(
        task=task,
        call_id=call_id or _text(details.get("call_id")),
        status=_text(details.get("status")),
        phone=mask_phone(phone) if phone else None,
        attempts=_int(details.get("attempts")),
        max_attempts=_int(details.get("max_attempts")),
        duration=_int(details.get("duration")),
        timeline=_timeline(details, mine),
        source="task result" if returned else "callback" if mine else "",
    )


def _timeline(details: Mapping[str, Any], entries: Iterable[CallbackEntry]) -> list[TimelineEvent]:
    """Queued, started, each event Fuse listed, each callback received, ended: oldest first."""
    marks: list[tuple[Any, str]] = [(details.get("queued_at"), "Queued")]
    marks.append((details.get("started_at"), "Started"))
    for event in details.get("events") or ():
        if isinstance(event, Mapping):
            marks.append((event.get("at"), f"Fuse event: {event.get('event')}"))
    for entry in entries:
        marks.append((entry.get("received_at"), f"Callback received: {entry['details'].get('status')}"))
    marks.append((details.get("ended_at"), f"Ended: {details.get('status')}"))
    events = [TimelineEvent(at, label) for value, label in marks if (at := _when(value)) is not None]
    return sorted(events, key=lambda event: event.at)


def _campaign_result(value: Mapping[str, Any] | None) -> CampaignResult | None:
    """The result, or None when there is none or it is not one this provider wrote."""
    try:
        return CampaignResult.from_xcom(value) if value is not None else None
    except (TypeError, ValueError, IndexError, KeyError):
        return None


def _campaign_value(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) and "totals" in value and "calls" in value else None


def _is_call_details(value: Any) -> bool:
    return isinstance(value, Mapping) and "status" in value


def _when(value: Any) -> datetime | None:
    """An aware datetime from ISO text; None for anything else (a page never fails on a field)."""
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None

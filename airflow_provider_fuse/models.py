"""The rules of a call request and the parsing of call details: no I/O, no Airflow.

``CallRequest`` turns what a user wrote (often a rendered template, so usually strings) into the
exact Fuse form fields, or raises ``FuseValidationError`` before anything is sent. ``CallDetails``
reads Fuse's status answer defensively and gives back a small, masked, JSON-able dict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from enum import Enum
from typing import Any, NamedTuple

from airflow_provider_fuse import protocol
from airflow_provider_fuse.exceptions import (
    FuseCallFailed,
    FuseError,
    FuseResponseError,
    FuseValidationError,
)
from airflow_provider_fuse.phone import (
    check_post_dial,
    mask_phone,
    normalise_caller_id,
    split_tel_uri,
    to_e164,
)

__all__ = [
    "CallDetails",
    "CallEvent",
    "CallRequest",
    "CallStatus",
    "FuseCallFailed",
    "FuseError",
    "FuseValidationError",
]

#: Application variable names: a letter or underscore, then letters, digits or underscores, at
#: most 64 characters, so that every name is usable as-is inside a Fuse application.
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Unix seconds beyond this are almost certainly milliseconds (it is the year 2286).
_MAX_UNIX_SECONDS = 9_999_999_999


class CallStatus(str, Enum):
    """Known call statuses. Fuse may report others: those are kept as plain strings, not terminal."""

    QUEUED = "queued"
    DIALING = "dialing"
    CONNECTED = "connected"
    COMPLETED = "completed"
    CANCELED = "canceled"
    FAILED = "failed"
    REJECTED = "rejected"

    # ``self: str`` lets both ``CallStatus.COMPLETED.is_terminal()`` and ``CallStatus.is_terminal(text)``
    # work, for the statuses Fuse reports that this enum does not know.
    def is_terminal(self: str) -> bool:
        return str(self).lower() in protocol.TERMINAL_STATUSES

    def succeeded(self: str) -> bool:
        return str(self).lower() in protocol.SUCCESS_STATUSES

    def __str__(self) -> str:
        return self.value


def path_id(field: str, value: Any) -> str:
    """An application or deployment id: Fuse's path ids are numeric, and nothing else may reach a URL."""
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not text.isdigit() or not text.isascii():
        raise FuseValidationError(field, repr(value)[:40], "Fuse ids are whole numbers, e.g. 1001.")
    return text


def positive_number(
    field: str, value: Any, allowed: str = "Give seconds above zero, or a timedelta."
) -> float:
    """A poll interval, timeout or rate: a finite number above zero (a timedelta counts its seconds)."""
    number = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(number, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", number):
        number = float(number)
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not 0 < number < float("inf"):
        raise FuseValidationError(field, repr(value)[:40], allowed)
    return float(number)


def is_loopback_host(host: str | None) -> bool:
    from airflow_provider_fuse.urls import is_loopback_host as loopback  # the one URL rule

    return loopback(host)


class CallRequest:
    """One validated queue request, built with the operator's parameter names.

    Construction validates everything; ``to_form()`` gives Fuse's form fields as strings.
    ``calling_hours`` (the callee's local time, e.g. ``("08:00", "21:00")``) moves the start to the
    next allowed instant and clips the end to the hours' close; ``timezone`` overrides the zone
    found from the number; ``calling_notes`` then says what moved. ``default_region`` reads national
    numbers; ``now`` pins the clock (tests).
    """

    def __init__(
        self,
        phone_number: str,
        caller_id: str | None = None,
        post_dial: str | None = None,
        start_timestamp: Any = None,
        end_timestamp: Any = None,
        max_attempts: int | str | None = None,
        reattempt_wait: int | str | timedelta | None = None,
        variables: Mapping[str, Any] | str | None = None,
        result_url: str | None = None,
        is_pci: bool | int | str = False,
        *,
        calling_hours: Any = None,
        timezone: str | None = None,
        default_region: str = "US",
        now: datetime | None = None,
    ):
        now = now or datetime.now(dt_timezone.utc)
        self.phone_number, self.caller_id, self.post_dial = _destination(
            phone_number, _blank_to_none(caller_id), _blank_to_none(post_dial), default_region
        )
        self.start_timestamp = _timestamp("start_timestamp", start_timestamp, now)
        self.end_timestamp = _timestamp("end_timestamp", end_timestamp, now)
        if self.end_timestamp is not None:
            if self.end_timestamp <= now.timestamp():
                raise FuseValidationError(
                    "end_timestamp",
                    _iso(self.end_timestamp),
                    "The end of the dialing window is already past.",
                )
            if self.start_timestamp is not None and self.end_timestamp <= self.start_timestamp:
                raise FuseValidationError(
                    "end_timestamp",
                    _iso(self.end_timestamp),
                    f"It must be after start_timestamp ({_iso(self.start_timestamp)}).",
                )
        self.max_attempts = _bounded_int("max_attempts", max_attempts, protocol.MAX_ATTEMPTS_RANGE)
        self.reattempt_wait = _bounded_int(
            "reattempt_wait", _seconds(reattempt_wait), protocol.REATTEMPT_WAIT_RANGE, unit=" seconds"
        )
        if self.max_attempts is not None and self.max_attempts > 1 and self.reattempt_wait is None:
            raise FuseValidationError(
                "reattempt_wait",
                "None",
                f"It is required when max_attempts is above 1 (got {self.max_attempts}): "
                "give 60 to 86400 seconds.",
            )
        self.variables = _variables(variables)
        self.result_url = _result_url(_blank_to_none(result_url))
        self.is_pci = _flag("is_pci", is_pci)
        self.calling_notes: tuple[str, ...] = ()
        if _blank_to_none(calling_hours) is not None:
            self._fit_to_calling_hours(_calling_hours(calling_hours), _blank_to_none(timezone), now)

    def _fit_to_calling_hours(self, hours: Any, timezone: str | None, now: datetime) -> None:
        from airflow_provider_fuse.calling_hours import fit_to_calling_hours

        window = fit_to_calling_hours(
            self.phone_number,
            hours,
            timezone=timezone,
            start=self.start_timestamp,
            end=self.end_timestamp,
            max_attempts=self.max_attempts,
            reattempt_wait=self.reattempt_wait,
            now=now,
        )
        self.start_timestamp, self.end_timestamp = window.start, window.end
        self.calling_notes = window.notes

    @property
    def tel_uri(self) -> str:
        """The destination as Fuse's form wants it: ``tel:+E164[;ani=...][;postd=...]``."""
        uri = f"tel:{self.phone_number}"
        if self.caller_id:
            uri += f";ani={self.caller_id}"
        if self.post_dial:
            uri += f";postd={self.post_dial}"
        return uri

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone_number)

    def to_form(self, variables_field: str = protocol.DEFAULT_VARIABLES_FIELD) -> dict[str, str]:
        """Exactly the form fields of a Fuse queue request, as strings; unset options are left out."""
        form = {protocol.PHONE_NUMBER: self.tel_uri}
        form.update(self.shared_form())
        if self.variables:
            form[variables_field] = json.dumps(self.variables, separators=(",", ":"))
        return form

    def shared_form(self) -> dict[str, str]:
        """The fields a bulk upload applies to every row: window, attempts, callback, PCI."""
        optional = {
            protocol.START_TIMESTAMP: self.start_timestamp,
            protocol.END_TIMESTAMP: self.end_timestamp,
            protocol.MAX_ATTEMPTS: self.max_attempts,
            protocol.REATTEMPT_WAIT: self.reattempt_wait,
            protocol.RESULT_URL: self.result_url,
            protocol.IS_PCI: 1 if self.is_pci else None,
        }
        return {name: str(value) for name, value in optional.items() if value is not None}

    def describe(self) -> str:
        """A log line that names no full number and, for PCI calls, no variable names."""
        parts = [f"to {self.masked_phone}"]
        if self.start_timestamp:
            parts.append(f"from {_iso(self.start_timestamp)}")
        if self.end_timestamp:
            parts.append(f"until {_iso(self.end_timestamp)}")
        if self.max_attempts:
            parts.append(f"{self.max_attempts} attempt(s)")
        if self.is_pci:
            parts.append("PCI (variables withheld)")
        elif self.variables:
            parts.append(f"variables {sorted(self.variables)}")
        return ", ".join(parts)


class CallEvent(NamedTuple):
    """One step of a call's life as Fuse reports it."""

    name: str
    at: datetime


@dataclass(frozen=True)
class CallDetails:
    """A call's state, parsed from Fuse's ``call_details``; unknown fields are kept in ``extra``."""

    call_id: str | None
    status: str
    phone_number: str | None = None
    attempts: int | None = None
    max_attempts: int | None = None
    reattempt_wait: int | None = None
    duration: int | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    events: tuple[CallEvent, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    _KNOWN = frozenset(
        {
            "status",
            "phone_number",
            "attempts",
            "max_attempts",
            "reattempt_wait",
            "duration",
            "queued_timestamp",
            "start_timestamp",
            "end_timestamp",
            "events",
        }
    )

    @classmethod
    def from_api(cls, data: Any, call_id: str | None = None) -> CallDetails:
        """Read a status body (``{"call_details": {...}}``) or the bare ``call_details`` object."""
        details = protocol.parse_status_response(data)
        if details is None and isinstance(data, Mapping) and "status" in data:
            details = data
        if details is None:
            raise FuseResponseError(f"Fuse's status answer has no call_details object: {_shape(data)}")
        status = str(details.get("status") or "").strip()
        call_id = details.get("call_id", call_id)
        return cls(
            call_id=str(call_id) if call_id not in (None, "") else None,
            status=status or "unknown",
            phone_number=_unquote(details.get("phone_number")),
            attempts=_int_or_none(details.get("attempts")),
            max_attempts=_int_or_none(details.get("max_attempts")),
            reattempt_wait=_int_or_none(details.get("reattempt_wait")),
            duration=_int_or_none(details.get("duration")),
            queued_at=_datetime_or_none(details.get("queued_timestamp")),
            started_at=_datetime_or_none(details.get("start_timestamp")),
            ended_at=_datetime_or_none(details.get("end_timestamp")),
            events=_events(details.get("events")),
            extra={k: v for k, v in details.items() if k not in cls._KNOWN},
        )

    @property
    def is_terminal(self) -> bool:
        return CallStatus.is_terminal(self.status)

    @property
    def succeeded(self) -> bool:
        return CallStatus.succeeded(self.status)

    def to_dict(self) -> dict[str, Any]:
        """Small and JSON-able, with the number masked: safe for XCom, events and logs."""
        return {
            "call_id": self.call_id,
            "status": self.status,
            "phone_number": mask_phone(self.phone_number) if self.phone_number else None,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "duration": self.duration,
            "queued_at": _iso_dt(self.queued_at),
            "started_at": _iso_dt(self.started_at),
            "ended_at": _iso_dt(self.ended_at),
            "events": [{"event": e.name, "at": e.at.isoformat()} for e in self.events],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallDetails:
        """Rebuild from ``to_dict()`` (a trigger event, an XCom value)."""
        return cls(
            call_id=data.get("call_id"),
            status=str(data.get("status") or "unknown"),
            phone_number=data.get("phone_number"),
            attempts=data.get("attempts"),
            max_attempts=data.get("max_attempts"),
            duration=data.get("duration"),
            queued_at=_from_iso(data.get("queued_at")),
            started_at=_from_iso(data.get("started_at")),
            ended_at=_from_iso(data.get("ended_at")),
            events=tuple(
                CallEvent(str(e["event"]), datetime.fromisoformat(e["at"])) for e in data.get("events") or ()
            ),
        )

    def failure(self) -> FuseCallFailed:
        """The error a task raises for this call when it ended without being completed."""
        attempts = f"{self.attempts} of {self.max_attempts}" if self.max_attempts else str(self.attempts)
        last = ", ".join(f"{e.name} at {e.at:%Y-%m-%d %H:%M:%S}Z" for e in self.events[-4:]) or "none"
        return FuseCallFailed(
            f"Fuse call {self.call_id} to {mask_phone(self.phone_number or '')} ended {self.status!r} "
            f"after {attempts} attempt(s); last events: {last}.",
            call_id=self.call_id,
            status=self.status,
        )


# --- validation helpers ----------------------------------------------------------------------


def _blank_to_none(value: Any) -> Any:
    """Templates render unset values as '' or 'None': both mean "not given"."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return None
    return value


def _destination(
    phone_number: Any, caller_id: Any, post_dial: Any, region: str
) -> tuple[str, str | None, str | None]:
    if not isinstance(phone_number, (str, int)) or isinstance(phone_number, bool) or not str(phone_number):
        raise FuseValidationError(
            "phone_number",
            repr(phone_number) if not isinstance(phone_number, (str, int)) else "''",
            "A phone number (string) is required.",
        )
    tel = split_tel_uri(str(phone_number))
    number = to_e164(tel.number, field="phone_number", region=region)
    for name, in_uri, given in (
        ("caller_id", tel.caller_id, caller_id),
        ("post_dial", tel.post_dial, post_dial),
    ):
        if in_uri is not None and given is not None and str(in_uri) != str(given):
            raise FuseValidationError(
                name,
                "given twice",
                f"phone_number's tel: URI already sets {name}; give it in one place only.",
            )
    ani = tel.caller_id if tel.caller_id is not None else caller_id
    postd = tel.post_dial if tel.post_dial is not None else post_dial
    return (
        number,
        normalise_caller_id(str(ani), region=region) if ani else None,
        check_post_dial(str(postd)) if postd else None,
    )


def _calling_hours(value: Any) -> Any:
    """A rendered template of a list, ``"['08:00', '21:00']"``, reads as the list it came from."""
    if isinstance(value, str) and value.strip().startswith(("[", "(")):
        import ast

        try:
            return ast.literal_eval(value.strip())
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return value
    return value


def _timestamp(name: str, value: Any, now: datetime) -> int | None:
    """Aware datetime, ISO-8601 with offset, Unix seconds, or a timedelta from now -> Unix seconds."""
    value = _blank_to_none(value)
    allowed = (
        "Give an aware datetime, an ISO-8601 string with a UTC offset, Unix seconds, or a timedelta from now."
    )
    if value is None:
        return None
    if isinstance(value, timedelta):
        try:
            return _unix_seconds(name, (now + value).timestamp(), allowed)
        except OverflowError:
            raise FuseValidationError(name, repr(value), allowed) from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise FuseValidationError(
                name,
                repr(value.isoformat()),
                "Naive datetimes are ambiguous (whose local time?): attach a timezone, "
                "e.g. pendulum.datetime(..., tz='America/New_York').",
            )
        return _unix_seconds(name, value.timestamp(), allowed)
    if isinstance(value, bool):
        raise FuseValidationError(name, repr(value), allowed)
    if isinstance(value, (int, float)):
        return _unix_seconds(name, value, allowed)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return _unix_seconds(name, float(text), allowed)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise FuseValidationError(name, repr(value[:40]), allowed) from None
        return _timestamp(name, parsed, now)
    raise FuseValidationError(name, f"a {type(value).__name__}", allowed)


def _unix_seconds(name: str, value: float, allowed: str) -> int:
    if not 0 < value <= _MAX_UNIX_SECONDS:
        raise FuseValidationError(
            name,
            repr(value),
            f"{allowed} Unix seconds lie between 1 and {_MAX_UNIX_SECONDS} (not milliseconds).",
        )
    return int(value)


def _seconds(value: Any) -> Any:
    return value.total_seconds() if isinstance(value, timedelta) else value


def _bounded_int(name: str, value: Any, bounds: tuple[int, int], unit: str = "") -> int | None:
    value = _blank_to_none(value)
    if value is None:
        return None
    low, high = bounds
    allowed = f"Allowed: a whole number from {low} to {high}{unit}."
    if isinstance(value, bool):
        raise FuseValidationError(name, repr(value), allowed)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        value = int(value)
    if not isinstance(value, int) or not low <= value <= high:
        raise FuseValidationError(name, repr(value)[:40], allowed)
    return value


def _variables(value: Any) -> dict[str, Any]:
    value = _blank_to_none(value)
    allowed = 'Give a JSON object (dict) of application variables, e.g. {"name": "John Doe"}.'
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise FuseValidationError("variables", "a string that is not JSON", allowed) from None
    if not isinstance(value, Mapping):
        raise FuseValidationError("variables", f"a {type(value).__name__}", allowed)
    for key in value:
        if not isinstance(key, str) or not VARIABLE_NAME.fullmatch(key):
            raise FuseValidationError(
                "variables",
                f"key {str(key)[:70]!r}",
                "Variable names start with a letter or '_', then letters, digits or '_' (at most 64).",
            )
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise FuseValidationError(
            "variables", "a value that is not JSON-serialisable", f"{allowed} ({type(err).__name__})"
        ) from None
    return dict(value)


def _result_url(value: Any) -> str | None:
    from airflow_provider_fuse.urls import check_url  # the one URL rule, also the connection's

    return None if value is None else str(check_url(value, field="result_url", allow_query=True))


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false", ""):
        return value.strip().lower() in ("1", "true")
    raise FuseValidationError(name, repr(value)[:40], "Allowed: True/False or 1/0.")


# --- parsing helpers -------------------------------------------------------------------------


def _shape(data: Any) -> str:
    if isinstance(data, Mapping):
        return f"an object with keys {sorted(map(str, data))[:10]}"
    return f"a {type(data).__name__}"


def _unquote(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip().strip("'\"")
    return text or None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def _datetime_or_none(value: Any) -> datetime | None:
    seconds = _int_or_none(value)
    if seconds is None or not 0 < seconds <= _MAX_UNIX_SECONDS:
        return None
    return datetime.fromtimestamp(seconds, dt_timezone.utc)


def _events(value: Any) -> tuple[CallEvent, ...]:
    if not isinstance(value, list):
        return ()
    events = []
    for item in value:
        if isinstance(item, Mapping) and item.get("event") is not None:
            at = _datetime_or_none(item.get("timestamp"))
            if at is not None:
                events.append(CallEvent(str(item["event"]), at))
    return tuple(events)


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, dt_timezone.utc).isoformat()


def _iso_dt(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _from_iso(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None

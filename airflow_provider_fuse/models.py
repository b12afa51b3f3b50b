"""The rules of a call request and the parsing of call details: no I/O, no Airflow.

``CallRequest`` turns what a user wrote (often a rendered template, so usually strings) into the
exact Fuse form fields, or raises ``FuseValidationError`` before anything is sent; the settings it
shares with a campaign are a ``CallOptions`` (:mod:`airflow_provider_fuse.validation`).
``CallDetails`` reads Fuse's status answer defensively and gives back a small, masked, JSON-able dict.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from enum import Enum
from typing import Any, NamedTuple, TypedDict

from airflow_provider_fuse import exceptions, protocol
from airflow_provider_fuse.phone import (
    check_post_dial,
    mask_phone,
    normalise_caller_id,
    split_tel_uri,
    to_e164,
)
from airflow_provider_fuse.urls import check_call_id
from airflow_provider_fuse.validation import (
    MAX_UNIX_SECONDS,
    CallOptions,
    blank,
    check_variable_names,
    iso,
    parse_variables,
)

__all__ = ["UNKNOWN_STATUS", "CallDetails", "CallDetailsDict", "CallEvent", "CallRequest", "CallStatus"]

#: The status of a call whose status was never read, or that reported only statuses this provider
#: does not know past its dialing window (see :class:`~airflow_provider_fuse.waiting.UnknownStatuses`).
UNKNOWN_STATUS = "unknown"


class CallStatus(str, Enum):
    """Known call statuses, spelled as protocol.py's wire constants (the one place that knows them).

    Fuse may report others: those are kept as plain strings, not terminal.
    """

    QUEUED = protocol.QUEUED
    DIALING = protocol.DIALING
    CONNECTED = protocol.CONNECTED
    COMPLETED = protocol.COMPLETED
    CANCELED = protocol.CANCELED
    FAILED = protocol.FAILED
    REJECTED = protocol.REJECTED

    # ``self: str`` lets both ``CallStatus.COMPLETED.is_terminal()`` and ``CallStatus.is_terminal(text)``
    # work, for the statuses Fuse reports that this enum does not know.
    def is_terminal(self: str) -> bool:
        return str(self).lower() in protocol.TERMINAL_STATUSES

    def succeeded(self: str) -> bool:
        return str(self).lower() in protocol.SUCCESS_STATUSES

    def is_known(self: str) -> bool:
        """Whether this provider knows the status (documented, or ASSUMED in protocol.py)."""
        return str(self).lower() in protocol.ACTIVE_STATUSES | protocol.TERMINAL_STATUSES

    def __str__(self) -> str:
        return self.value


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
        destination = _destination(phone_number, caller_id, post_dial, default_region)
        options = CallOptions.validate(
            start_timestamp=start_timestamp,
            end_timestamp=end_timestamp,
            max_attempts=max_attempts,
            reattempt_wait=reattempt_wait,
            result_url=result_url,
            is_pci=is_pci,
            calling_hours=calling_hours,
            timezone=timezone,
            now=now,
        )
        self._settle(destination, parse_variables(variables), options, now)

    @classmethod
    def with_options(
        cls,
        options: CallOptions,
        phone_number: str,
        caller_id: str | None = None,
        post_dial: str | None = None,
        variables: Mapping[str, Any] | str | None = None,
        *,
        default_region: str = "US",
        variables_field: str = protocol.DEFAULT_VARIABLES_FIELD,
        now: datetime,
    ) -> CallRequest:
        """A request for one more callee under options already validated (a campaign's rows)."""
        request = cls.__new__(cls)
        destination = _destination(phone_number, caller_id, post_dial, default_region)
        request._settle(destination, parse_variables(variables, variables_field), options, now)
        return request

    def _settle(
        self,
        destination: tuple[str, str | None, str | None],
        variables: dict[str, Any],
        options: CallOptions,
        now: datetime,
    ) -> None:
        """Keep the checked values; calling hours then fit the window to this callee's zones."""
        self.phone_number, self.caller_id, self.post_dial = destination
        self.variables = variables
        self.calling_notes: tuple[str, ...] = ()
        if options.calling_hours is not None:
            from airflow_provider_fuse.calling_hours import fit_to_calling_hours

            window = fit_to_calling_hours(
                self.phone_number,
                options.calling_hours,
                timezone=options.timezone,
                start=options.start_timestamp,
                end=options.end_timestamp,
                max_attempts=options.max_attempts,
                reattempt_wait=options.reattempt_wait,
                now=now,
            )
            options = replace(options, start_timestamp=window.start, end_timestamp=window.end)
            self.calling_notes = window.notes
        #: The options as sent: with calling hours, the window fitted to this callee.
        self.options = options

    @property
    def start_timestamp(self) -> int | None:
        return self.options.start_timestamp

    @property
    def end_timestamp(self) -> int | None:
        return self.options.end_timestamp

    @property
    def max_attempts(self) -> int | None:
        return self.options.max_attempts

    @property
    def reattempt_wait(self) -> int | None:
        return self.options.reattempt_wait

    @property
    def result_url(self) -> str | None:
        return self.options.result_url

    @property
    def is_pci(self) -> bool:
        return self.options.is_pci

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

    def to_form(
        self,
        variables_field: str = protocol.DEFAULT_VARIABLES_FIELD,
        variables_format: str = protocol.DEFAULT_VARIABLES_FORMAT,
    ) -> dict[str, str]:
        """Exactly the form fields of a Fuse queue request, as strings; unset options are left out.

        ``variables_field`` and ``variables_format`` are the connection's: no variable may be named
        like a field of the request (in ``fields`` format each variable IS a field), and a ``query``
        longer than Fuse takes is refused. Both are checked here, before the hook sends anything.
        """
        check_variable_names(self.variables, variables_field)
        form = {protocol.PHONE_NUMBER: self.tel_uri}
        form.update(self.shared_form())
        carried = protocol.variables_form(self.variables, variables_format, variables_field)
        if variables_format == protocol.VARIABLES_QUERY and carried:
            length = len(carried[variables_field])
            if length > protocol.MAX_QUERY_VARIABLES_CHARS:
                raise exceptions.FuseValidationError(
                    "variables",
                    f"{len(self.variables)} variable(s) of {length} characters once URL-encoded",
                    f"The connection's variables_format 'query' carries at most "
                    f"{protocol.MAX_QUERY_VARIABLES_CHARS} characters: send fewer or shorter variables.",
                )
        form.update(carried)
        return form

    def shared_form(self) -> dict[str, str]:
        """The fields a bulk upload applies to every row: window, attempts, callback, PCI."""
        return self.options.to_form()

    def __repr__(self) -> str:
        return f"CallRequest({self.describe()})"

    def describe(self) -> str:
        """A log line that names no full number and, for PCI calls, no variable names."""
        parts = [f"to {self.masked_phone}"]
        if self.start_timestamp:
            parts.append(f"from {iso(self.start_timestamp)}")
        if self.end_timestamp:
            parts.append(f"until {iso(self.end_timestamp)}")
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


class CallEventDict(TypedDict):
    event: str
    at: str


class CallDetailsDict(TypedDict):
    """``CallDetails.to_dict()``: a task's return value and a trigger event's ``call_details``."""

    call_id: str | None
    status: str
    phone_number: str | None
    attempts: int | None
    max_attempts: int | None
    duration: int | None
    queued_at: str | None
    started_at: str | None
    ended_at: str | None
    events: list[CallEventDict]


@dataclass(frozen=True, repr=False)
class CallDetails:
    """A call's state, parsed from Fuse's ``call_details``; unknown fields are kept in ``extra``.

    Any answer gives a value: a field this provider cannot read (a 5,000-digit count, a list where
    text belongs) is None, and its repr masks the number as ``to_dict()`` does.
    """

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
            raise exceptions.FuseResponseError(
                f"Fuse's status answer has no call_details object: {_shape(data)}"
            )
        status = (_text(details.get("status")) or "").strip()
        return cls(
            call_id=_call_id(details.get("call_id"), call_id),
            status=status or UNKNOWN_STATUS,
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

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.to_dict().items() if name != "events")
        return f"CallDetails({fields}, events={len(self.events)})"

    @property
    def is_terminal(self) -> bool:
        return CallStatus.is_terminal(self.status)

    @property
    def succeeded(self) -> bool:
        return CallStatus.succeeded(self.status)

    def to_dict(self) -> CallDetailsDict:
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
            status=str(data.get("status") or UNKNOWN_STATUS),
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

    def failure(self) -> exceptions.FuseCallFailed:
        """The error a task raises for this call when it ended without being completed."""
        attempts = f"{self.attempts} of {self.max_attempts}" if self.max_attempts else str(self.attempts)
        last = ", ".join(f"{e.name} at {e.at:%Y-%m-%d %H:%M:%S}Z" for e in self.events[-4:]) or "none"
        return exceptions.FuseCallFailed(
            f"Fuse call {self.call_id} to {mask_phone(self.phone_number or '')} ended {self.status!r} "
            f"after {attempts} attempt(s); last events: {last}.",
            call_id=self.call_id,
            status=self.status,
        )


# --- helpers ---------------------------------------------------------------------------------


def _destination(
    phone_number: Any, caller_id: Any, post_dial: Any, region: str
) -> tuple[str, str | None, str | None]:
    """The number in E.164 and the caller id and post-dial digits, given in the URI or beside it."""
    caller_id, post_dial = blank(caller_id), blank(post_dial)
    if not isinstance(phone_number, (str, int)) or isinstance(phone_number, bool) or not str(phone_number):
        raise exceptions.FuseValidationError(
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
            raise exceptions.FuseValidationError(
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


# --- parsing helpers -------------------------------------------------------------------------

#: Counts, durations and Unix times have far fewer digits; longer numbers are unreadable, not errors.
_MAX_DIGITS = 18
_WHOLE_NUMBER = re.compile(rf"\s*-?[0-9]{{1,{_MAX_DIGITS}}}\s*")


def _shape(data: Any) -> str:
    if isinstance(data, Mapping):
        return f"an object with keys {sorted(_text(key) or '?' for key in data)[:10]}"
    return f"a {type(data).__name__}"


def _text(value: Any) -> str | None:
    """A text field as Fuse may write it (a string or a whole number); None for anything else."""
    if isinstance(value, str):
        return value
    number = _int_or_none(value)
    return None if number is None else str(number)


def _call_id(value: Any, asked: str | None) -> str | None:
    """The id the answer names, if it is a usable call id; else the id that was asked for."""
    if value is not None:  # Fuse's status answer usually names none: no error raised per poll
        try:
            return check_call_id(value)
        except exceptions.FuseValidationError:
            pass
    return str(asked) if asked not in (None, "") else None


def _unquote(value: Any) -> str | None:
    text = (_text(value) or "").strip().strip("'\"")
    return text or None


def _int_or_none(value: Any) -> int | None:
    """A whole number of at most ``_MAX_DIGITS`` digits (Python refuses to read 4,300+), else None."""
    if type(value) is str and value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS:
        return int(value)  # the common case, without the regex (every status answer has several)
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return value if abs(value) < 10**_MAX_DIGITS else None
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value):
        return int(value)
    return None


def _datetime_or_none(value: Any) -> datetime | None:
    seconds = _int_or_none(value)
    if seconds is None or not 0 < seconds <= MAX_UNIX_SECONDS:
        return None
    return datetime.fromtimestamp(seconds, dt_timezone.utc)


def _events(value: Any) -> tuple[CallEvent, ...]:
    if not isinstance(value, list):
        return ()
    events = []
    for item in value:
        if isinstance(item, Mapping):
            at, name = _datetime_or_none(item.get("timestamp")), _text(item.get("event"))
            if at is not None and name is not None:
                events.append(CallEvent(name, at))
    return tuple(events)


def _iso_dt(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _from_iso(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None

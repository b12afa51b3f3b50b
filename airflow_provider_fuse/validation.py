"""Rendered values to checked ones, and the settings a call and a campaign share (``CallOptions``).

Airflow renders templated fields to text, so each kind of value has ONE coercer here (flag, blank,
number, duration, timestamp...) and every field of that kind goes through it. Each raises
``FuseValidationError`` naming the field, the value (truncated, never a full phone number) and what
is allowed, before any request is sent. No I/O, no Airflow.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_fuse import protocol
from airflow_provider_fuse.exceptions import FuseValidationError
from airflow_provider_fuse.urls import check_url

if TYPE_CHECKING:
    from airflow_provider_fuse.calling_hours import CallingHours

#: Application variable names: a letter or underscore, then letters, digits or underscores, at
#: most 64 characters, so that every name is usable as-is inside a Fuse application.
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
#: Unix seconds beyond this are almost certainly milliseconds (it is the year 2286).
MAX_UNIX_SECONDS = 9_999_999_999
#: The shortest gap between two status requests for one call, and the most status requests per
#: second a campaign's wait may send, unless Fuse is on this machine (the FuseSimulator): Plum
#: publishes no rate limit and warns that floods make every call fail.
MIN_POLL_INTERVAL = 1.0
MAX_REQUESTS_PER_SECOND = 20.0
# Decimal text as a template renders a number; no exponent, no "inf" or "nan".
_DECIMAL = re.compile(r"\s*-?\d+(\.\d+)?\s*")
_TIMESTAMP_ALLOWED = (
    "Give an aware datetime, an ISO-8601 string with a UTC offset, Unix seconds, or a timedelta from now."
)
_VARIABLES_ALLOWED = 'Give a JSON object (dict) of application variables, e.g. {"name": "John Doe"}.'


# --- one coercer per kind of rendered value ------------------------------------------------------


def blank(value: Any) -> Any:
    """None for "not given": templates render an unset value as '' or 'None'; else the value."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return None
    return value


def flag(field: str, value: Any) -> bool:
    """True/False, 1/0, or their text in any case. Blank is refused: every flag has a default."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false"):
        return value.strip().lower() in ("1", "true")
    raise FuseValidationError(field, repr(value)[:40], "Allowed: True/False or 1/0.")


def number(field: str, value: Any, allowed: str) -> float:
    """A finite int or float, or its decimal text (``" 2.5 "``); booleans are not numbers."""
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        shown = repr(value)[:40] if isinstance(value, (str, bool)) else f"a {type(value).__name__}"
        raise FuseValidationError(field, shown, allowed)
    try:
        result = float(value)
    except OverflowError:  # an int too large for a float
        raise FuseValidationError(field, repr(value)[:40], allowed) from None
    if not math.isfinite(result):
        raise FuseValidationError(field, repr(value)[:40], allowed)
    return result


def duration(field: str, value: Any, allowed: str) -> float:
    """Seconds, from a timedelta or a number (its text included)."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    return number(field, value, allowed)


def positive_number(
    field: str, value: Any, allowed: str = "Give seconds above zero, or a timedelta."
) -> float:
    """A poll interval, timeout or rate: a duration or number above zero."""
    seconds = duration(field, value, allowed)
    if seconds <= 0:
        raise FuseValidationError(field, repr(value)[:40], allowed)
    return seconds


def bounded_int(field: str, value: Any, bounds: tuple[int, int], *, seconds: bool = False) -> int:
    """A whole number within ``bounds`` (inclusive); with ``seconds``, a timedelta counts its seconds."""
    low, high = bounds
    allowed = f"Allowed: a whole number from {low} to {high}{' seconds' if seconds else ''}."
    found = duration(field, value, allowed) if seconds else number(field, value, allowed)
    if not found.is_integer() or not low <= found <= high:
        raise FuseValidationError(field, repr(value)[:40], allowed)
    return int(found)


def timestamp(field: str, value: Any, now: datetime) -> int | None:
    """Aware datetime, ISO-8601 with offset, Unix seconds, or a timedelta from now -> Unix seconds."""
    value = blank(value)
    if value is None:
        return None
    if isinstance(value, timedelta):
        try:
            return _unix_seconds(field, (now + value).timestamp())
        except OverflowError:
            raise FuseValidationError(field, repr(value), _TIMESTAMP_ALLOWED) from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise FuseValidationError(
                field,
                repr(value.isoformat()),
                "Naive datetimes are ambiguous (whose local time?): attach a timezone, "
                "e.g. pendulum.datetime(..., tz='America/New_York').",
            )
        return _unix_seconds(field, value.timestamp())
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise FuseValidationError(field, repr(value[:40]), _TIMESTAMP_ALLOWED) from None
        return timestamp(field, parsed, now)
    return _unix_seconds(field, number(field, value, _TIMESTAMP_ALLOWED))


def _unix_seconds(field: str, value: float) -> int:
    if not 0 < value <= MAX_UNIX_SECONDS:
        raise FuseValidationError(
            field,
            repr(value),
            f"{_TIMESTAMP_ALLOWED} Unix seconds lie between 1 and {MAX_UNIX_SECONDS} (not milliseconds).",
        )
    return int(value)


def iso(seconds: int) -> str:
    """Unix seconds as ISO-8601 UTC, for messages."""
    return datetime.fromtimestamp(seconds, dt_timezone.utc).isoformat()


# --- values of one kind of field ----------------------------------------------------------------


def path_id(field: str, value: Any) -> str:
    """An application or deployment id: Fuse's path ids are numeric, and nothing else may reach a URL."""
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not text.isdigit() or not text.isascii():
        raise FuseValidationError(field, repr(value)[:40], "Fuse ids are whole numbers, e.g. 1001.")
    return text


def parse_variables(value: Any, variables_field: str = protocol.DEFAULT_VARIABLES_FIELD) -> dict[str, Any]:
    """Application variables: a dict (or its JSON text) of JSON values under usable, unreserved names."""
    value = blank(value)
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise FuseValidationError("variables", "a string that is not JSON", _VARIABLES_ALLOWED) from None
    if not isinstance(value, Mapping):
        raise FuseValidationError("variables", f"a {type(value).__name__}", _VARIABLES_ALLOWED)
    for key in value:
        if not isinstance(key, str) or not VARIABLE_NAME.fullmatch(key):
            raise FuseValidationError(
                "variables",
                f"key {str(key)[:70]!r}",
                "Variable names start with a letter or '_', then letters, digits or '_' (at most 64).",
            )
    check_variable_names(value, variables_field)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as err:
        raise FuseValidationError(
            "variables",
            "a value that is not JSON-serialisable",
            f"{_VARIABLES_ALLOWED} ({type(err).__name__})",
        ) from None
    return dict(value)


def check_variable_names(
    names: Iterable[str], variables_field: str = protocol.DEFAULT_VARIABLES_FIELD
) -> None:
    """Refuse a variable named like a field of the request (trimmed, any case): it would override it.

    In a bulk upload a ``destination`` variable is a second destination column, and Fuse dials it. The
    variables field is reserved too: the configured one (the connection's extra) and the default.
    """
    reserved = protocol.REQUEST_FIELDS | {protocol.DEFAULT_VARIABLES_FIELD, variables_field.strip().lower()}
    for name in names:
        if str(name).strip().lower() in reserved:
            raise FuseValidationError(
                "variables",
                f"a variable named {str(name)[:70]!r}",
                f"These names belong to the fields of Fuse's request and would override them: "
                f"{', '.join(sorted(reserved))}. Rename the variable.",
            )


def callback_url(value: Any) -> str | None:
    """Where Fuse POSTs the final call details: the one URL rule (:mod:`urls`), queries allowed."""
    value = blank(value)
    if value is None:
        return None
    return str(
        check_url(value.strip() if isinstance(value, str) else value, field="result_url", allow_query=True)
    )


def parse_calling_hours(value: Any) -> CallingHours | None:
    """Calling hours as written, or as a rendered template of a list (``"['08:00', '21:00']"``)."""
    from airflow_provider_fuse.calling_hours import CallingHours

    value = blank(value)
    if value is None:
        return None
    if isinstance(value, str) and value.strip().startswith(("[", "(")):
        # Text that is no literal is left to parse(), which says what is wrong with it.
        with contextlib.suppress(ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            value = ast.literal_eval(value.strip())
    return CallingHours.parse(value)


def polling_interval(field: str, value: Any, *, loopback: bool) -> float:
    """Seconds between two status requests: at least ``MIN_POLL_INTERVAL`` unless Fuse is on loopback."""
    seconds = positive_number(field, value)
    if seconds < MIN_POLL_INTERVAL and not loopback:
        raise FuseValidationError(
            field,
            repr(value)[:40],
            f"Give {MIN_POLL_INTERVAL:g} second or more: shorter intervals flood Fuse (they are allowed "
            "only when the connection's host is loopback, such as the FuseSimulator).",
        )
    return seconds


def request_rate(value: Any, *, loopback: bool) -> float:
    """A campaign's status requests per second: above zero, at most the ceiling unless on loopback."""
    allowed = f"Give a rate above zero and at most {MAX_REQUESTS_PER_SECOND:g} per second"
    rate = positive_number("max_requests_per_second", value, allowed + ".")
    if rate > MAX_REQUESTS_PER_SECOND and not loopback:
        raise FuseValidationError(
            "max_requests_per_second",
            repr(value)[:40],
            f"{allowed} (higher rates only when the connection's host is loopback, such as the FuseSimulator).",
        )
    return rate


def wait_settings(poll_interval: Any, timeout: Any, *, loopback: bool) -> tuple[float, float | None]:
    """A wait's ``poll_interval`` and ``timeout`` (None: no deadline) in seconds."""
    checked_timeout = None if timeout is None else positive_number("timeout", timeout)
    return polling_interval("poll_interval", poll_interval, loopback=loopback), checked_timeout


# --- the settings a call and a campaign share ------------------------------------------------------


@dataclass(frozen=True)
class CallOptions:
    """A call's settings apart from who is called: the window, attempts, callback, PCI and hours.

    A single call and every row of a campaign share one ``CallOptions``, built by :meth:`validate`
    from rendered values, so each setting is checked once, by one rule. ``calling_hours`` and
    ``timezone`` are applied per number (``CallRequest``); ``timezone`` is kept only with hours.
    The fields are named in ``fields.OPTION_FIELDS``, which DAG files read without importing this.
    """

    start_timestamp: int | None = None
    end_timestamp: int | None = None
    max_attempts: int | None = None
    reattempt_wait: int | None = None
    result_url: str | None = None
    is_pci: bool = False
    calling_hours: CallingHours | None = None
    timezone: str | None = None

    @classmethod
    def validate(
        cls,
        *,
        start_timestamp: Any = None,
        end_timestamp: Any = None,
        max_attempts: Any = None,
        reattempt_wait: Any = None,
        result_url: Any = None,
        is_pci: Any = False,
        calling_hours: Any = None,
        timezone: Any = None,
        now: datetime,
    ) -> CallOptions:
        """Check every setting as rendered; raise ``FuseValidationError`` on the first bad one."""
        start = timestamp("start_timestamp", start_timestamp, now)
        end = timestamp("end_timestamp", end_timestamp, now)
        if end is not None:
            if end <= now.timestamp():
                raise FuseValidationError(
                    "end_timestamp", iso(end), "The end of the dialing window is already past."
                )
            if start is not None and end <= start:
                raise FuseValidationError(
                    "end_timestamp", iso(end), f"It must be after start_timestamp ({iso(start)})."
                )
        attempts = _optional(bounded_int, "max_attempts", max_attempts, protocol.MAX_ATTEMPTS_RANGE)
        wait = _optional(
            bounded_int, "reattempt_wait", reattempt_wait, protocol.REATTEMPT_WAIT_RANGE, seconds=True
        )
        if attempts is not None and attempts > 1 and wait is None:
            raise FuseValidationError(
                "reattempt_wait",
                "None",
                f"It is required when max_attempts is above 1 (got {attempts}): give 60 to 86400 seconds.",
            )
        url = callback_url(result_url)
        pci = flag("is_pci", is_pci)
        hours = parse_calling_hours(calling_hours)
        zone = None
        if hours is not None and blank(timezone) is not None:
            from airflow_provider_fuse.calling_hours import zone_name

            zone = zone_name(timezone)
        return cls(start, end, attempts, wait, url, pci, hours, zone)

    def to_form(self) -> dict[str, str]:
        """The form fields these options set, as strings; unset options are left out."""
        optional = {
            protocol.START_TIMESTAMP: self.start_timestamp,
            protocol.END_TIMESTAMP: self.end_timestamp,
            protocol.MAX_ATTEMPTS: self.max_attempts,
            protocol.REATTEMPT_WAIT: self.reattempt_wait,
            protocol.RESULT_URL: self.result_url,
            protocol.IS_PCI: 1 if self.is_pci else None,
        }
        return {name: str(value) for name, value in optional.items() if value is not None}


def _optional(coerce: Any, field: str, value: Any, *args: Any, **kwargs: Any) -> Any:
    value = blank(value)
    return None if value is None else coerce(field, value, *args, **kwargs)

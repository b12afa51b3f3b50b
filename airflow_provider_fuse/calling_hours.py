"""Calling hours: when Fuse may dial a callee, judged by the callee's own wall clock.

Pure logic, no I/O, no Airflow. ``fit_to_calling_hours`` turns a requested dialing window into one
that starts at an allowed instant and closes when the calling hours close, so that a call (and its
reattempts) never rings someone at night.

The one rule, also across daylight-saving changes: **an instant is allowed when the callee's wall
clock reads a time inside the window** (``[start, end)``, or ``[start, 24:00) + [00:00, end)`` when
the window spans midnight). Consequences, on purpose:

* Spring forward (the clock skips e.g. 02:00-03:00): a window opening at 02:30 opens at the jump,
  the first instant that exists after 02:30 (03:00 new time); one closing at 02:30 closes at the jump.
* Fall back (the clock repeats e.g. 01:00-02:00): the repeated hour is judged each time the clock
  shows it. A window closing at 01:30 closes at the first 01:30 and is allowed again from the
  second 01:00 to the second 01:30, because the wall clock again reads a time inside the window;
  a window opening at 01:30 is allowed from the first 01:30 to the first 02:00 and again from the
  second 01:30. Windows whose edges avoid 00:00-03:00 (all usual calling hours) never notice this.

A number that may ring in several zones is allowed only at instants allowed in all of them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_fuse import phone
from airflow_provider_fuse.exceptions import FuseValidationError

__all__ = ["SEARCH_DAYS", "CallingHours", "CallingWindow", "fit_to_calling_hours", "zone_name"]

DAY = 86_400
#: How far past the requested start to look for the next allowed instant.
SEARCH_DAYS = 14
# Zones change their UTC offset at most once within this step (true of every tz database zone in
# use), so scanning at this step and bisecting finds every transition.
_SCAN_STEP = 3_600
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_RANGE = re.compile(r"\s*([0-9:]+)\s*[-\u2013]\s*([0-9:]+)\s*")
_HOURS_ALLOWED = (
    "Give the callee's local hours as ('08:00', '21:00'), '08:00-21:00' or two datetime.time objects: "
    "HH:MM[:SS] from 00:00 to 23:59:59 (24:00 as an end), start and end different; an end before "
    "the start spans midnight, e.g. ('22:00', '06:00')."
)

Interval = tuple[int, int]


@dataclass(frozen=True)
class CallingHours:
    """A daily window of local wall-clock time; ``end < start`` spans midnight."""

    start: time
    end: time

    def __post_init__(self) -> None:
        for edge in (self.start, self.end):
            if edge.tzinfo is not None:
                raise FuseValidationError(
                    "calling_hours",
                    repr(edge),
                    "Calling hours are the callee's local time: give naive times and, to force a "
                    "zone, timezone='Area/City'.",
                )
        if self._seconds(self.start) == self._seconds(self.end):
            raise FuseValidationError("calling_hours", str(self), _HOURS_ALLOWED)

    @classmethod
    def parse(cls, value: object) -> CallingHours:
        """Read what a user (or a rendered template) wrote; raise FuseValidationError otherwise."""
        if isinstance(value, CallingHours):
            return value
        if isinstance(value, str):
            match = _RANGE.fullmatch(value)
            if match is None:
                raise FuseValidationError("calling_hours", repr(value[:40]), _HOURS_ALLOWED)
            value = match.groups()
        if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
            raise FuseValidationError("calling_hours", _short_repr(value), _HOURS_ALLOWED)
        return cls(_parse_time(value[0], is_end=False), _parse_time(value[1], is_end=True))

    @property
    def spans_midnight(self) -> bool:
        return self.end_second <= self.start_second

    @property
    def start_second(self) -> int:
        return self._seconds(self.start)

    @property
    def end_second(self) -> int:
        return self._seconds(self.end)

    def contains(self, wall: time) -> bool:
        """Whether a wall-clock reading lies inside the window (start inclusive, end exclusive)."""
        second = self._seconds(wall)
        if self.spans_midnight:
            return second >= self.start_second or second < self.end_second
        return self.start_second <= second < self.end_second

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"

    @staticmethod
    def _seconds(value: time) -> int:
        return value.hour * 3600 + value.minute * 60 + value.second


@dataclass(frozen=True)
class CallingWindow:
    """The dialing window Fuse may use, in Unix seconds, with notes for the task log."""

    start: int
    end: int
    zones: tuple[str, ...]
    notes: tuple[str, ...] = ()
    #: Attempts (of max_attempts spread by reattempt_wait from ``start``) falling at or after ``end``.
    attempts_outside: int = 0


def fit_to_calling_hours(
    phone_number: str,
    hours: CallingHours | str | Sequence[str | time],
    *,
    timezone: str | None = None,
    start: int | None = None,
    end: int | None = None,
    max_attempts: int | None = None,
    reattempt_wait: int | None = None,
    now: datetime | None = None,
) -> CallingWindow:
    """Move ``start`` to the next allowed instant and clip ``end`` to the close of that interval.

    Fuse takes one window per call, so the window ends when the calling hours close: a call must not
    keep dialing into the night. ``phone_number`` is E.164; ``now`` is an aware datetime (tests).
    """
    hours = CallingHours.parse(hours)
    masked = phone.mask_phone(phone_number)
    zones = _zones(phone_number, masked, hours, timezone)
    now = now or datetime.now(dt_timezone.utc)
    if now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    now_ts = math.ceil(now.timestamp())
    begin = now_ts if start is None else max(start, now_ts)
    horizon = begin + SEARCH_DAYS * DAY
    limit = horizon if end is None else min(end, horizon)

    # Scan two days past the horizon so that the close of an interval opening just before it is exact.
    allowed: list[Interval] | None = None
    for zone in zones:
        found = _allowed_intervals(ZoneInfo(zone), hours, begin, horizon + 2 * DAY)
        allowed = found if allowed is None else _intersect(allowed, found)
    if not allowed or allowed[0][0] >= limit:
        where = f"{len(zones)} zones ({_list(zones)}) together" if len(zones) > 1 else zones[0]
        until = (
            f"end_timestamp ({_when(end, zones)})"
            if end is not None and end <= horizon
            else f"the next {SEARCH_DAYS} days"
        )
        raise FuseValidationError(
            "calling_hours",
            f"{hours} for {masked}",
            f"Calling hours {hours} in {where} leave no allowed instant between "
            f"{_when(begin, zones)} and {until}: widen the hours or the window, or pass timezone=.",
        )
    window_start, close = allowed[0]
    window_end = close if end is None else min(end, close)

    notes: list[str] = []
    if len(zones) > 1:
        notes.append(
            f"{masked} may ring in {len(zones)} time zones ({_list(zones)}): dialing only when "
            f"calling hours {hours} hold in all of them."
        )
    if window_start > begin:
        origin = "now" if start is None or start < now_ts else "start_timestamp"
        notes.append(
            f"{origin} ({_when(begin, zones)}) is outside calling hours {hours}: start_timestamp "
            f"moved to {_when(window_start, zones)}."
        )
    if end is None:
        notes.append(f"end_timestamp set to {_when(window_end, zones)}, when calling hours {hours} close.")
    elif window_end < end:
        notes.append(
            f"end_timestamp clipped from {_when(end, zones)} to {_when(window_end, zones)}, "
            f"when calling hours {hours} close."
        )
    outside = _attempts_outside(window_start, window_end, max_attempts, reattempt_wait)
    if outside:
        notes.append(
            f"{outside} of {max_attempts} attempts (every {reattempt_wait} s from the start) would "
            f"fall at or after end_timestamp ({_when(window_end, zones)}) and would not be dialed."
        )
    return CallingWindow(window_start, window_end, zones, tuple(notes), outside)


# --- zones -------------------------------------------------------------------------------------


def _zones(number: str, masked: str, hours: CallingHours, override: str | None) -> tuple[str, ...]:
    """The override if given (validated), else the number's zones, each known to the tz database."""
    if override is not None:
        return (zone_name(override),)
    zones = phone.time_zones(number)
    if not zones:
        raise FuseValidationError(
            "calling_hours",
            f"{hours} for {masked}",
            "The number's time zone is unknown, so its local time cannot be judged: "
            "pass timezone='Area/City' (an IANA name).",
        )
    unknown = [zone for zone in zones if not _known_zone(zone)]
    if unknown:
        raise FuseValidationError(
            "calling_hours",
            f"{hours} for {masked}",
            f"This system's time zone database lacks {_list(tuple(unknown))}, where the number may ring: "
            "update the tzdata package or pass timezone='Area/City'.",
        )
    return zones


def zone_name(value: object) -> str:
    """An IANA time zone name this system knows, or FuseValidationError naming ``timezone``."""
    name = value.strip() if isinstance(value, str) else ""
    if not _known_zone(name):
        raise FuseValidationError(
            "timezone",
            _short_repr(value),
            "Give an IANA time zone name, e.g. 'America/New_York' or 'Europe/Berlin'.",
        )
    return name


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


# --- interval arithmetic on Unix seconds -------------------------------------------------------


def _allowed_intervals(zone: ZoneInfo, hours: CallingHours, lo: int, hi: int) -> list[Interval]:
    """The instants of ``[lo, hi)`` whose wall-clock reading in ``zone`` lies in ``hours``.

    Between two transitions the offset is constant, so the reading is ``(t + offset) mod DAY`` and
    the allowed instants are plain daily intervals; the result is sorted, disjoint and merged.
    """
    open_second = hours.start_second
    close_second = hours.end_second + (DAY if hours.spans_midnight else 0)
    result: list[Interval] = []
    for piece_lo, piece_hi, offset in _constant_offset_pieces(zone, lo, hi):
        day = (piece_lo + offset - close_second) // DAY  # the earliest local day that may reach piece_lo
        while (opens := day * DAY + open_second - offset) < piece_hi:
            a, b = max(opens, piece_lo), min(day * DAY + close_second - offset, piece_hi)
            if a < b:
                if result and a <= result[-1][1]:  # touches the previous piece: one interval
                    result[-1] = (result[-1][0], max(result[-1][1], b))
                else:
                    result.append((a, b))
            day += 1
    return result


def _constant_offset_pieces(zone: ZoneInfo, lo: int, hi: int) -> list[tuple[int, int, int]]:
    """Split ``[lo, hi)`` into ``(from, to, utc_offset_seconds)`` pieces at the zone's transitions."""
    pieces: list[tuple[int, int, int]] = []
    piece_start, offset = lo, _offset(zone, lo)
    t = lo
    while t < hi:
        step_end = min(t + _SCAN_STEP, hi)
        if (next_offset := _offset(zone, step_end)) != offset:
            before, after = t, step_end  # offset(before) == offset != offset(after): bisect
            while after - before > 1:
                middle = (before + after) // 2
                before, after = (middle, after) if _offset(zone, middle) == offset else (before, middle)
            pieces.append((piece_start, after, offset))
            piece_start, offset = after, next_offset
        t = step_end
    pieces.append((piece_start, hi, offset))
    return [piece for piece in pieces if piece[0] < piece[1]]


def _offset(zone: ZoneInfo, ts: int) -> int:
    delta = datetime.fromtimestamp(ts, zone).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """Instants in both lists of sorted, disjoint intervals."""
    result: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            result.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return result


def _attempts_outside(start: int, end: int, max_attempts: int | None, wait: int | None) -> int:
    # ``end`` is exclusive (the first instant no longer allowed), so an attempt due exactly at it is outside.
    if not max_attempts or not wait or wait <= 0:
        return 0
    return sum(1 for k in range(max_attempts) if start + k * wait >= end)


# --- parsing and formatting --------------------------------------------------------------------


def _parse_time(value: object, *, is_end: bool) -> time:
    if isinstance(value, time):
        return value.replace(microsecond=0)
    if isinstance(value, str) and (match := _TIME.fullmatch(value.strip())):
        hour, minute, second = (int(part or 0) for part in match.groups())
        if is_end and (hour, minute, second) == (24, 0, 0):
            return time(0, 0)  # 24:00 as an end: midnight, closing the day
        if hour < 24 and minute < 60 and second < 60:
            return time(hour, minute, second)
    raise FuseValidationError("calling_hours", _short_repr(value), _HOURS_ALLOWED)


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def _when(ts: int, zones: tuple[str, ...]) -> str:
    """A Unix time as the callee reads it (one zone) or in UTC (several zones, listed elsewhere)."""
    if len(zones) == 1:
        local = datetime.fromtimestamp(ts, ZoneInfo(zones[0]))
        return f"{local.strftime(_fmt(local))} ({zones[0]})"
    utc = datetime.fromtimestamp(ts, dt_timezone.utc)
    return utc.strftime(_fmt(utc))


def _fmt(value: datetime) -> str:
    return "%Y-%m-%d %H:%M:%S %Z" if value.second else "%Y-%m-%d %H:%M %Z"


def _list(zones: tuple[str, ...], shown: int = 4) -> str:
    more = f" and {len(zones) - shown} more" if len(zones) > shown else ""
    return ", ".join(zones[:shown]) + more


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

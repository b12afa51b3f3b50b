"""Calling hours: the computed window lies inside the callee's local hours, also across DST."""

from __future__ import annotations

from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from airflow_provider_fuse.calling_hours import (
    SEARCH_DAYS,
    CallingHours,
    CallingWindow,
    fit_to_calling_hours,
)
from airflow_provider_fuse.exceptions import FuseValidationError

DAY = 86_400
BOSTON = "+16175551234"  # America/New_York
BERLIN = "+4915112345678"  # Europe/Berlin
NEWFOUNDLAND = "+17095551234"  # America/Halifax and America/St_Johns
TOLL_FREE = "+18009957586"  # 42 zones, Guam (UTC+10) to Pago Pago (UTC-11)
NO_ZONE = "+80012345678"  # international freephone: phonenumbers knows no zone
EARLY = datetime(2019, 1, 1, tzinfo=timezone.utc)  # a clock before every requested start

ZONES = [
    "America/New_York",
    "America/Los_Angeles",
    "America/Chicago",
    "America/Phoenix",
    "America/St_Johns",
    "America/Sao_Paulo",
    "America/Santiago",
    "America/Havana",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Dublin",
    "Africa/Casablanca",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "UTC",
]


def at(iso: str) -> int:
    """Unix seconds of an ISO time with an explicit offset, e.g. '2026-03-08T03:00-04:00'."""
    return int(datetime.fromisoformat(iso).timestamp())


def fit(number: str, hours: object, start: str, end: str | None = None, **kwargs: object) -> CallingWindow:
    return fit_to_calling_hours(
        number,
        hours,  # type: ignore[arg-type]
        start=at(start),
        end=at(end) if end else None,
        now=EARLY,
        **kwargs,  # type: ignore[arg-type]
    )


def reads_inside(ts: int, zone: str, hours: tuple[int, int]) -> bool:
    """Oracle, independent of the module: the wall clock in ``zone`` at ``ts`` reads inside hours."""
    wall = datetime.fromtimestamp(ts, ZoneInfo(zone))
    second = wall.hour * 3600 + wall.minute * 60 + wall.second
    opens, closes = hours
    if closes <= opens:
        return second >= opens or second < closes
    return opens <= second < closes


def minutes_between(lo: int, hi: int) -> range:
    """Every whole UTC minute in [lo, hi): window edges and DST transitions all fall on one."""
    return range(-(-lo // 60) * 60, hi, 60)


# --- properties ------------------------------------------------------------------------------

Y2020, Y2036 = at("2020-01-01T00:00+00:00"), at("2036-01-01T00:00+00:00")
# Random instants, plus instants in the months of DST changes (north and south) to hit them often.
instants = st.one_of(
    st.integers(Y2020, Y2036 - 30 * DAY),
    st.builds(
        lambda year, month, day, second: at(f"{year}-{month:02d}-{day:02d}T00:00+00:00") + second,
        st.integers(2020, 2035),
        st.sampled_from([3, 4, 9, 10, 11]),
        st.integers(1, 28),
        st.integers(0, DAY - 1),
    ),
)
# Window edges on whole minutes, biased towards the small hours where clocks change.
edges = st.one_of(st.integers(0, 1439), st.integers(0, 240)).map(lambda minute: minute * 60)


def _hours(opens: int, closes: int) -> CallingHours:
    return CallingHours(time(opens // 3600, opens % 3600 // 60), time(closes // 3600, closes % 3600 // 60))


def check_window(
    window: CallingWindow, zones: tuple[str, ...], hours: tuple[int, int], begin: int, end: int | None
) -> None:
    """The window is inside the hours in every zone, starts as early and ends as late as allowed."""

    def allowed(ts: int) -> bool:
        return all(reads_inside(ts, zone, hours) for zone in zones)

    assert window.start >= begin
    assert window.end > window.start
    assert end is None or window.end <= end
    assert allowed(window.start)
    assert allowed(window.end - 1)
    assert all(allowed(ts) for ts in minutes_between(window.start, window.end))
    # Nothing allowed was skipped between the requested start and the computed one ...
    assert window.start == begin or not allowed(window.start - 1)
    if window.start - begin < 3 * DAY:
        assert not any(allowed(ts) for ts in minutes_between(begin, window.start))
    # ... and the end is the close of the hours, unless the requested end came first.
    assert window.end == end or not allowed(window.end)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    zone=st.sampled_from(ZONES),
    begin=instants,
    opens=edges,
    closes=edges,
    length=st.none() | st.integers(60, 3 * DAY),
)
def test_start_and_whole_window_lie_inside_the_hours(
    zone: str, begin: int, opens: int, closes: int, length: int | None
) -> None:
    assume(opens != closes)
    end = None if length is None else begin + length
    try:
        window = fit_to_calling_hours(
            BOSTON, _hours(opens, closes), timezone=zone, start=begin, end=end, now=EARLY
        )
    except FuseValidationError as error:
        assert error.field == "calling_hours"
        assert end is not None, "a daily window always has an allowed instant within 14 days"
        assert not any(
            reads_inside(ts, zone, (opens, closes)) for ts in [begin, *minutes_between(begin, end)]
        )
        return
    assert window.zones == (zone,)
    check_window(window, (zone,), (opens, closes), begin, end)


@settings(max_examples=60, deadline=None)
@given(
    number=st.sampled_from([NEWFOUNDLAND, "+61412345678", "+79123456789"]),
    begin=instants,
    opens=st.integers(0, 1439).map(lambda minute: minute * 60),
    length_minutes=st.integers(12 * 60, 23 * 60),
)
def test_several_zones_use_the_window_allowed_in_all_of_them(
    number: str, begin: int, opens: int, length_minutes: int
) -> None:
    closes = (opens + length_minutes * 60) % DAY
    window = fit_to_calling_hours(number, _hours(opens, closes), start=begin, now=EARLY)
    assert len(window.zones) > 1
    check_window(window, window.zones, (opens, closes), begin, None)
    assert f"{len(window.zones)} time zones" in window.notes[0]


# --- daylight saving: exact instants ---------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "hours", "start", "expected_start", "expected_end"),
    [
        # New York springs forward on 2026-03-08: 02:00 EST -> 03:00 EDT.
        (
            BOSTON,
            ("08:00", "21:00"),
            "2026-03-07T22:00-05:00",
            "2026-03-08T08:00-04:00",
            "2026-03-08T21:00-04:00",
        ),
        # 02:30 does not exist that day: the window opens at the jump.
        (
            BOSTON,
            ("02:30", "21:00"),
            "2026-03-08T00:00-05:00",
            "2026-03-08T03:00-04:00",
            "2026-03-08T21:00-04:00",
        ),
        # ... and a window closing at 02:30 closes at the jump.
        (
            BOSTON,
            ("22:00", "02:30"),
            "2026-03-07T22:00-05:00",
            "2026-03-07T22:00-05:00",
            "2026-03-08T03:00-04:00",
        ),
        (
            BOSTON,
            ("22:00", "06:00"),
            "2026-03-07T23:00-05:00",
            "2026-03-07T23:00-05:00",
            "2026-03-08T06:00-04:00",
        ),
        # New York falls back on 2026-11-01: 02:00 EDT -> 01:00 EST.
        (
            BOSTON,
            ("08:00", "21:00"),
            "2026-10-31T22:00-04:00",
            "2026-11-01T08:00-05:00",
            "2026-11-01T21:00-05:00",
        ),
        # A midnight-spanning window over the repeated hour is one 9-hour interval.
        (
            BOSTON,
            ("22:00", "06:00"),
            "2026-10-31T22:00-04:00",
            "2026-10-31T22:00-04:00",
            "2026-11-01T06:00-05:00",
        ),
        # A window closing inside the repeated hour closes at its first 01:30 ...
        (
            BOSTON,
            ("22:00", "01:30"),
            "2026-10-31T22:00-04:00",
            "2026-10-31T22:00-04:00",
            "2026-11-01T01:30-04:00",
        ),
        # ... and the clock reads 01:00-01:30 once more after it goes back.
        (
            BOSTON,
            ("22:00", "01:30"),
            "2026-11-01T01:45-04:00",
            "2026-11-01T01:00-05:00",
            "2026-11-01T01:30-05:00",
        ),
        # A window opening inside the repeated hour: the clock reads 01:30-02:00, then 01:00 (outside).
        (
            BOSTON,
            ("01:30", "21:00"),
            "2026-11-01T00:00-04:00",
            "2026-11-01T01:30-04:00",
            "2026-11-01T01:00-05:00",
        ),
        (
            BOSTON,
            ("01:30", "21:00"),
            "2026-11-01T01:00-05:00",
            "2026-11-01T01:30-05:00",
            "2026-11-01T21:00-05:00",
        ),
        # Berlin springs forward on 2026-03-29: 02:00 CET -> 03:00 CEST.
        (
            BERLIN,
            ("08:00", "20:00"),
            "2026-03-28T21:00+01:00",
            "2026-03-29T08:00+02:00",
            "2026-03-29T20:00+02:00",
        ),
        (
            BERLIN,
            ("02:30", "20:00"),
            "2026-03-29T00:00+01:00",
            "2026-03-29T03:00+02:00",
            "2026-03-29T20:00+02:00",
        ),
        (
            BERLIN,
            ("22:00", "06:00"),
            "2026-03-28T22:00+01:00",
            "2026-03-28T22:00+01:00",
            "2026-03-29T06:00+02:00",
        ),
        # Berlin falls back on 2026-10-25: 03:00 CEST -> 02:00 CET.
        (
            BERLIN,
            ("08:00", "20:00"),
            "2026-10-24T21:00+02:00",
            "2026-10-25T08:00+01:00",
            "2026-10-25T20:00+01:00",
        ),
        (
            BERLIN,
            ("22:00", "06:00"),
            "2026-10-24T22:00+02:00",
            "2026-10-24T22:00+02:00",
            "2026-10-25T06:00+01:00",
        ),
        (
            BERLIN,
            ("02:30", "20:00"),
            "2026-10-25T00:00+02:00",
            "2026-10-25T02:30+02:00",
            "2026-10-25T02:00+01:00",
        ),
        (
            BERLIN,
            ("02:30", "20:00"),
            "2026-10-25T02:00+01:00",
            "2026-10-25T02:30+01:00",
            "2026-10-25T20:00+01:00",
        ),
    ],
)
def test_daylight_saving_changes(
    number: str, hours: tuple[str, str], start: str, expected_start: str, expected_end: str
) -> None:
    window = fit(number, hours, start)
    assert (window.start, window.end) == (at(expected_start), at(expected_end))


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("America/New_York", "2026-03-08"),
        ("America/New_York", "2026-11-01"),
        ("Europe/Berlin", "2026-03-29"),
        ("Europe/Berlin", "2026-10-25"),
        ("Australia/Lord_Howe", "2026-04-05"),  # a 30-minute change
        ("Australia/Lord_Howe", "2026-10-04"),
    ],
)
def test_every_hour_of_a_dst_day_with_small_hours_windows(zone: str, day: str) -> None:
    """Deterministic sweep: windows with edges where clocks change, requested at every hour."""
    midnight = int(datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(zone)).timestamp())
    windows = [(0, 7200), (5400, 75600), (9000, 21600), (79200, 5400), (79200, 9000), (7200, 10800)]
    for opens, closes in windows:
        for hour in range(-3, 27):
            begin = midnight + hour * 3600
            window = fit_to_calling_hours(
                BOSTON, _hours(opens, closes), timezone=zone, start=begin, now=EARLY
            )
            check_window(window, (zone,), (opens, closes), begin, None)


def test_same_wall_hours_give_different_utc_across_a_dst_change() -> None:
    before = fit(BOSTON, "08:00-21:00", "2026-03-07T00:00-05:00")
    after = fit(BOSTON, "08:00-21:00", "2026-03-08T00:00-05:00")
    assert after.start - before.start == DAY - 3600


# --- midnight, zones, errors -----------------------------------------------------------------


def test_midnight_spanning_window_from_inside_and_before() -> None:
    inside = fit(BOSTON, ("22:00", "06:00"), "2026-06-02T03:00-04:00")
    assert (inside.start, inside.end) == (at("2026-06-02T03:00-04:00"), at("2026-06-02T06:00-04:00"))
    assert inside.notes == (
        "end_timestamp set to 2026-06-02 06:00 EDT (America/New_York), when calling hours 22:00-06:00 close.",
    )
    before = fit(BOSTON, ("22:00", "06:00"), "2026-06-02T12:00-04:00")
    assert (before.start, before.end) == (at("2026-06-02T22:00-04:00"), at("2026-06-03T06:00-04:00"))
    assert "moved to 2026-06-02 22:00 EDT" in before.notes[0]


def test_window_ending_at_midnight() -> None:
    window = fit(BOSTON, ("20:00", "24:00"), "2026-06-02T12:00-04:00")
    assert (window.start, window.end) == (at("2026-06-02T20:00-04:00"), at("2026-06-03T00:00-04:00"))


def test_newfoundland_number_uses_the_intersection_of_halifax_and_st_johns() -> None:
    # Summer: Halifax (UTC-3) allows 11:00-00:00Z, St John's (UTC-2:30) 10:30-23:30Z.
    window = fit(NEWFOUNDLAND, ("08:00", "21:00"), "2026-06-01T00:00+00:00")
    assert window.zones == ("America/Halifax", "America/St_Johns")
    assert (window.start, window.end) == (at("2026-06-01T11:00+00:00"), at("2026-06-01T23:30+00:00"))
    assert "2 time zones (America/Halifax, America/St_Johns)" in window.notes[0]
    # Winter: Halifax (UTC-4) 12:00-01:00Z, St John's (UTC-3:30) 11:30-00:30Z.
    winter = fit(NEWFOUNDLAND, ("08:00", "21:00"), "2026-01-15T01:00+00:00")
    assert (winter.start, winter.end) == (at("2026-01-15T12:00+00:00"), at("2026-01-16T00:30+00:00"))


def test_toll_free_number_spanning_21_hours_of_zones() -> None:
    window = fit(TOLL_FREE, ("08:00", "21:00"), "2026-06-01T00:00+00:00")
    assert len(window.zones) == 42
    # Guam (UTC+10) opens at 22:00Z, St John's (UTC-2:30) closes at 23:30Z.
    assert (window.start, window.end) == (at("2026-06-01T22:00+00:00"), at("2026-06-01T23:30+00:00"))
    assert "and 38 more" in window.notes[0]
    with pytest.raises(FuseValidationError) as caught:
        fit(TOLL_FREE, ("09:00", "17:00"), "2026-06-01T00:00+00:00")
    assert caught.value.field == "calling_hours"
    assert "42 zones" in str(caught.value)


def test_timezone_overrides_the_number() -> None:
    window = fit(BOSTON, ("08:00", "21:00"), "2026-06-01T00:00+00:00", timezone="Europe/Berlin")
    assert window.zones == ("Europe/Berlin",)
    assert window.start == at("2026-06-01T08:00+02:00")
    assert fit(NO_ZONE, ("08:00", "21:00"), "2026-06-01T00:00+00:00", timezone="Asia/Kolkata").start == at(
        "2026-06-01T08:00+05:30"
    )


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "america/new_york", "America", "../etc/passwd"])
def test_unknown_timezone_names_timezone(zone: str) -> None:
    with pytest.raises(FuseValidationError) as caught:
        fit(BOSTON, ("08:00", "21:00"), "2026-06-01T00:00+00:00", timezone=zone)
    assert caught.value.field == "timezone"


def test_number_without_zone_asks_for_timezone() -> None:
    with pytest.raises(FuseValidationError) as caught:
        fit(NO_ZONE, ("08:00", "21:00"), "2026-06-01T00:00+00:00")
    assert caught.value.field == "calling_hours"
    assert "timezone=" in str(caught.value)
    assert "12345678" not in str(caught.value)


def test_no_allowed_instant_before_end() -> None:
    with pytest.raises(FuseValidationError) as caught:
        fit(BOSTON, ("08:00", "21:00"), "2026-06-01T21:30-04:00", end="2026-06-02T07:59-04:00")
    message = str(caught.value)
    assert caught.value.field == "calling_hours"
    assert "end_timestamp (2026-06-02 07:59 EDT (America/New_York))" in message
    assert "+16***234" in message and BOSTON not in message


def test_end_is_clipped_to_the_close_and_kept_when_earlier() -> None:
    clipped = fit(BOSTON, ("08:00", "21:00"), "2026-06-01T09:00-04:00", end="2026-06-03T00:00-04:00")
    assert (clipped.start, clipped.end) == (at("2026-06-01T09:00-04:00"), at("2026-06-01T21:00-04:00"))
    assert clipped.notes == (
        "end_timestamp clipped from 2026-06-03 00:00 EDT (America/New_York) to 2026-06-01 21:00 EDT "
        "(America/New_York), when calling hours 08:00-21:00 close.",
    )
    kept = fit(BOSTON, ("08:00", "21:00"), "2026-06-01T09:00-04:00", end="2026-06-01T10:00-04:00")
    assert kept.end == at("2026-06-01T10:00-04:00")
    assert kept.notes == ()


def test_start_defaults_to_now_and_never_goes_back_in_time() -> None:
    now = datetime.fromisoformat("2026-06-01T09:15:30.25-04:00")
    window = fit_to_calling_hours(BOSTON, "08:00-21:00", now=now)
    assert window.start == at("2026-06-01T09:15:31-04:00")  # whole seconds, not before now
    past = fit_to_calling_hours(BOSTON, "08:00-21:00", start=at("2026-05-01T09:00-04:00"), now=now)
    assert past.start == window.start
    night = fit_to_calling_hours(BOSTON, "08:00-21:00", now=datetime.fromisoformat("2026-06-01T23:00-04:00"))
    assert night.start == at("2026-06-02T08:00-04:00")
    assert night.notes[0].startswith("now (2026-06-01 23:00 EDT (America/New_York)) is outside")
    with pytest.raises(ValueError):
        fit_to_calling_hours(BOSTON, "08:00-21:00", now=datetime(2026, 6, 1))


def test_search_horizon() -> None:
    start = at("2026-06-01T12:00-04:00")
    window = fit_to_calling_hours(BOSTON, "08:00-21:00", start=start, end=start + 30 * DAY, now=EARLY)
    assert window.end == at("2026-06-01T21:00-04:00")
    assert SEARCH_DAYS == 14


@pytest.mark.parametrize(
    ("max_attempts", "reattempt_wait", "outside"),
    [(5, 1200, 2), (5, 900, 1), (4, 900, 0), (3, None, 0), (None, 600, 0), (1, 86_400, 0), (10, 86_400, 9)],
)
def test_attempts_outside_the_window(
    max_attempts: int | None, reattempt_wait: int | None, outside: int
) -> None:
    # 20:00 to 21:00: attempts every 20 min fall at 20:00, 20:20, 20:40, 21:00 (closed), 21:20.
    window = fit(
        BOSTON,
        ("08:00", "21:00"),
        "2026-06-01T20:00-04:00",
        max_attempts=max_attempts,
        reattempt_wait=reattempt_wait,
    )
    assert window.attempts_outside == outside
    reported = [note for note in window.notes if "attempts" in note]
    if outside:
        assert reported == [
            f"{outside} of {max_attempts} attempts (every {reattempt_wait} s from the start) would fall at or "
            "after end_timestamp (2026-06-01 21:00 EDT (America/New_York)) and would not be dialed."
        ]
    else:
        assert reported == []


# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        ("08:00", "21:00"),
        ["08:00", "21:00"],
        "08:00-21:00",
        " 8:00 \u2013 21:00 ",
        "08:00:00-21:00:00",
        (time(8), time(21)),
        CallingHours(time(8), time(21)),
    ],
)
def test_parse_accepts(value: object) -> None:
    hours = CallingHours.parse(value)
    assert hours == CallingHours(time(8), time(21))
    assert str(hours) == "08:00-21:00"
    assert not hours.spans_midnight


def test_parse_midnight_forms() -> None:
    night = CallingHours.parse(("22:00", "06:00"))
    assert night.spans_midnight
    assert night.contains(time(23, 59)) and night.contains(time(0)) and not night.contains(time(6))
    assert CallingHours.parse("20:00-24:00") == CallingHours(time(20), time(0))
    assert str(CallingHours.parse(("08:00:30", "21:00"))) == "08:00:30-21:00"


@pytest.mark.parametrize(
    "value",
    [
        ("25:00", "21:00"),
        ("08:00", "25:00"),
        ("08:00", "08:00"),
        "08:00-08:00",
        ("00:00", "24:00"),
        ("24:00", "08:00"),
        ("08:60", "21:00"),
        "08:00 to 21:00",
        "8am-9pm",
        ("08:00",),
        ("08:00", "12:00", "21:00"),
        "08:00",
        42,
        None,
        (8, 21),
        (time(8, tzinfo=timezone.utc), time(21)),
    ],
)
def test_parse_errors_name_calling_hours(value: object) -> None:
    with pytest.raises(FuseValidationError) as caught:
        CallingHours.parse(value)
    assert caught.value.field == "calling_hours"


def test_fit_parses_hours_and_reports_bad_ones() -> None:
    with pytest.raises(FuseValidationError) as caught:
        fit(BOSTON, "25:00-21:00", "2026-06-01T00:00+00:00")
    assert caught.value.field == "calling_hours"

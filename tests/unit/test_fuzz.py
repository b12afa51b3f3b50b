"""Hypothesis over every user-facing input and every parser of Fuse's answers.

Inputs (CallRequest, QueueCallOperator): each yields a request that Fuse's own rules accept (the
simulator's validation is the oracle) or a FuseValidationError, never another exception; bad input
sends no request at all. Answers (CallDetails.from_api, protocol's parse functions, the hook's status
and body handling, the trigger): anything Fuse might send ends in a value or a FuseError subclass.
Runs are derandomized, so a failure reproduces.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import math
import os
import re
import signal
import string
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import hypothesis.strategies as st
import phonenumbers
import pytest
import requests_mock as rm
from aioresponses import aioresponses
from hypothesis import HealthCheck, example, given, settings

from airflow_provider_fuse import protocol
from airflow_provider_fuse.exceptions import FuseError, FuseValidationError, FuseWaitTimeout
from airflow_provider_fuse.hooks import fuse as hook_module
from airflow_provider_fuse.hooks.fuse import FuseHook
from airflow_provider_fuse.models import CallDetails, CallRequest
from airflow_provider_fuse.operators.fuse import QueueCallOperator
from airflow_provider_fuse.testing.forms import parse_form
from airflow_provider_fuse.testing.rules import ApiError, parse_bulk_form, parse_queue_form
from airflow_provider_fuse.triggers.fuse import FuseCallTrigger
from tests import figures
from tests.support import FakeStore as Store
from tests.support import FakeTI as TI

BASE = "https://fuse.test/api"
KEY = "dk-FUZZ-SECRET-1234"
NOW = datetime(2026, 6, 1, 15, 0, tzinfo=timezone.utc)
FIELDS = {
    "phone_number",
    "caller_id",
    "post_dial",
    "start_timestamp",
    "end_timestamp",
    "max_attempts",
    "reattempt_wait",
    "variables",
    "result_url",
    "is_pci",
    "calling_hours",
    "timezone",
    "application_id",
    "deployment_id",
    "poll_interval",
    "timeout",
}
FUZZ = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def fuse_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """``fuse_default`` on a mocked host; retries without waiting so odd Retry-After values cost nothing."""
    conn = {"conn_type": "fuse", "host": BASE, "login": "fuzz@example.com", "password": KEY}
    conn["extra"] = {"retry_limit": 2, "request_timeout": 5}  # type: ignore[assignment]
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json.dumps(conn))
    monkeypatch.setattr(hook_module, "backoff_seconds", lambda *args, **kwargs: 0.0)  # both paths' waits


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the code under test does not return in time.

    The real-time timer is pytest-timeout's too: its remaining time is put back afterwards.
    """

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"no answer within {seconds} s: the code under test hangs")

    previous = signal.signal(signal.SIGALRM, expire)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            signal.setitimer(signal.ITIMER_REAL, max(0.001, outer - (time.monotonic() - started)))


# --- strategies: what users write, what templates render, and garbage --------------------------

VALID_NUMBERS = ["+16175550123", "6175550123", "+442079460958", "+33142685300", "+61291234567", "16175550199"]
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**13), 10**13),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.sampled_from(["", " ", "None", "null", "0", "-1", "1e9", "NaN", "inf"]),
)


@st.composite
def formatted_number(draw: st.DrawFn) -> str:
    number = draw(st.sampled_from(VALID_NUMBERS))
    style = draw(st.sampled_from(["plain", "spaced", "dashed", "parens", "tel", "truncated", "padded"]))
    if style == "spaced":
        number = " ".join(number[i : i + 3] for i in range(0, len(number), 3))
    elif style == "dashed":
        number = number[:-4] + "-" + number[-4:]
    elif style == "parens" and not number.startswith("+"):
        number = f"({number[:3]}) {number[3:6]}-{number[6:]}"
    elif style == "tel":
        number = "tel:" + number
    elif style == "truncated":
        number = number[: draw(st.integers(1, len(number) - 1))]
    elif style == "padded":
        number = number + draw(st.text(alphabet="0123456789", min_size=1, max_size=6))
    suffix = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["ani", "postd", "ANI", "x", ""]),
                st.text(alphabet="0123456789+*#wWpPABCDx,;= ", max_size=8),
            ),
            max_size=2,
        )
    )
    return number + "".join(f";{name}={value}" for name, value in suffix)


PHONES = st.one_of(formatted_number(), st.text(alphabet="0123456789+-() tel:;=", max_size=25), JUNK)
CALLER_IDS = st.one_of(st.none(), formatted_number(), st.text(alphabet="0123456789+-() ", max_size=18), JUNK)
POST_DIAL = st.one_of(st.none(), st.text(alphabet="0123456789*#wWpPABCDEx, ;", max_size=10), JUNK)
AWARE = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(timezone.utc)
)
OFFSET = st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-23 * 60, 23 * 60))
TIMESTAMPS = st.one_of(
    st.none(),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),  # naive
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=OFFSET),
    st.builds(lambda d: d.isoformat(), AWARE),
    st.builds(lambda d: d.isoformat().replace("+00:00", "Z"), AWARE),
    st.builds(lambda d: d.replace(tzinfo=None).isoformat(), AWARE),
    st.integers(-(10**11), 10**11),
    st.builds(lambda s: str(s), st.integers(0, 10**11)),
    st.timedeltas(),
    st.builds(lambda s: timedelta(seconds=s), st.integers(-(10**6), 10**8)),
    JUNK,
)
COUNTS = st.one_of(
    st.none(),
    st.integers(-3, 100_000),
    st.builds(str, st.integers(-3, 100_000)),
    st.builds(lambda n: f" {n} ", st.integers(0, 20)),
    st.floats(-1, 100_000),
    st.timedeltas(min_value=timedelta(seconds=-10), max_value=timedelta(days=3)),
    JUNK,
)
JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
VARIABLE_NAMES = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True), st.text(max_size=12), st.integers()
)
VARIABLES = st.one_of(
    st.none(),
    st.dictionaries(
        VARIABLE_NAMES, JSON_VALUES | st.sets(st.integers(), max_size=2) | st.binary(max_size=3), max_size=4
    ),
    st.builds(json.dumps, st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3)),
    st.builds(json.dumps, JSON_VALUES),
    JUNK,
)
URLS = st.one_of(
    st.none(),
    st.builds(
        lambda scheme, host, path: f"{scheme}{host}{path}",
        st.sampled_from(["https://", "http://", "ftp://", "", "https:/", "javascript:"]),
        st.sampled_from(["example.com", "localhost", "127.0.0.1", "[::1]", "", "10.0.0.1", "ex ample.com"]),
        st.text(alphabet=string.ascii_letters + "/?=&:%", max_size=12),
    ),
    JUNK,
)
FLAGS = st.one_of(
    st.booleans(), st.sampled_from([0, 1, 2, -1, "0", "1", "true", "False", " 1 ", "yes"]), JUNK
)
HOURS = st.one_of(
    st.none(),
    st.sampled_from(["08:00-21:00", "22:00-06:00", "9:00 - 17:30", "24:00-08:00", "08:00-08:00", "8-21"]),
    st.tuples(st.times(), st.times()),
    st.tuples(
        st.builds(lambda h, m: f"{h}:{m:02d}", st.integers(0, 25), st.integers(0, 61)),
        st.builds(lambda h, m: f"{h}:{m:02d}", st.integers(0, 25), st.integers(0, 61)),
    ),
    st.lists(st.text(max_size=6), max_size=3),
    st.times(timezones=st.just(timezone.utc)),
    JUNK,
)
ZONES = st.one_of(
    st.none(),
    st.sampled_from(
        ["America/New_York", "Europe/Paris", "Australia/Sydney", "UTC", "Mars/Olympus", "../etc"]
    ),
    JUNK,
)
REGIONS = st.sampled_from(["US", "GB", "FR", "us", "ZZ", "", "U", "001"])
IDS = st.one_of(
    st.integers(0, 10**12),
    st.builds(str, st.integers(0, 10**12)),
    st.sampled_from(["1001 ", "abc", "1/../../outbound/5", "1?x=1", "-3", "1.5", "", "None", "١٢٣"]),
    st.integers(-(10**6), -1),
    JUNK,
)
POSITIVE_SECONDS = st.one_of(
    st.floats(min_value=0.001, max_value=3600),
    st.integers(1, 3600),
    st.timedeltas(min_value=timedelta(milliseconds=1), max_value=timedelta(hours=1)),
)
INTERVALS = st.one_of(
    POSITIVE_SECONDS, st.sampled_from([0, -1, -0.5, math.inf, math.nan]), st.text(max_size=4)
)
#: Positive but short (a campaign waits one poll interval before its first status request).
FAST_SECONDS = st.one_of(
    st.floats(0.001, 0.05), st.timedeltas(timedelta(milliseconds=1), timedelta(milliseconds=50))
)
BAD_SECONDS = st.sampled_from([0, -1, -0.5, math.inf, math.nan, "x", "", True])
TIMEOUTS = st.one_of(
    st.none(), POSITIVE_SECONDS, st.sampled_from([0, -1, math.inf, math.nan]), st.text(max_size=4)
)


def _good_seconds(value: Any, *, floor: float = 0.0, ceiling: float = math.inf) -> bool:
    """A usable poll interval, timeout or rate: finite and above zero (numeric text as rendered counts).

    Against a remote Fuse, poll intervals are at least 1 s and campaign rates at most 20/s.
    """
    if isinstance(value, timedelta):
        value = value.total_seconds()
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
        value = float(value)
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 0 < value < math.inf
        and floor <= value <= ceiling
    )


# --- the oracle: Fuse's rules, as the simulator enforces them ------------------------------------


def assert_fuse_accepts(request: CallRequest, now: datetime) -> dict[str, str]:
    """The form of an accepted request must pass Fuse's documented rules (the simulator's checks)."""
    form = request.to_form()
    try:
        parse_queue_form(form, protocol.DEFAULT_VARIABLES_FIELD)
    except ApiError as error:  # pragma: no cover - a failure here is the bug being reported
        raise AssertionError(
            f"validated locally but Fuse would answer 400: {error.message}; form {form}"
        ) from None
    number = protocol.PHONE_NUMBER_PATTERN.fullmatch(form["phone_number"])
    assert number is not None
    assert phonenumbers.is_valid_number(phonenumbers.parse("+" + number["digits"]))
    start, end = (int(form[k]) if k in form else None for k in ("start_timestamp", "end_timestamp"))
    for value in (start, end):
        assert value is None or 0 < value <= 9_999_999_999, form
    if end is not None:
        assert end > now.timestamp() - 1 and (start is None or end > start), form
    if request.is_pci:  # the logged description is the one the same call would have without variables
        bare = copy.copy(request)
        bare.variables = {}
        assert request.describe() == bare.describe(), "PCI variables reached the logged description"
    assert number["digits"] not in request.describe(), "describe() is logged: the number must be masked"
    return form


def assert_clear_validation_error(error: FuseValidationError, inputs: dict[str, Any]) -> None:
    """The error names a user-facing field and never spells out the phone number it was given."""
    assert error.field in FIELDS, error.field
    assert str(error).startswith(f"Invalid {error.field}")
    phone = inputs.get("phone_number")
    if isinstance(phone, str) and error.field in ("phone_number", "caller_id", "post_dial"):
        digits = re.sub(r"\D", "", phone.split(";")[0])
        if len(digits) >= 8:
            assert digits not in str(error), f"full number in an error message: {error}"


# --- CallRequest -----------------------------------------------------------------------------


@FUZZ
@given(
    phone_number=PHONES,
    caller_id=CALLER_IDS,
    post_dial=POST_DIAL,
    start_timestamp=TIMESTAMPS,
    end_timestamp=TIMESTAMPS,
    max_attempts=COUNTS,
    reattempt_wait=COUNTS,
    variables=VARIABLES,
    result_url=URLS,
    is_pci=FLAGS,
    calling_hours=HOURS,
    timezone_=ZONES,
    default_region=REGIONS,
)
@example(  # the numeric path refuses Unix seconds <= 0; a datetime before 1970 must be refused too
    phone_number="+16175550123",
    caller_id=None,
    post_dial=None,
    start_timestamp=datetime(1960, 1, 1, tzinfo=timezone.utc),
    end_timestamp=None,
    max_attempts=None,
    reattempt_wait=None,
    variables=None,
    result_url=None,
    is_pci=False,
    calling_hours=None,
    timezone_=None,
    default_region="US",
)
def test_call_request_gives_a_request_fuse_accepts_or_a_validation_error(**inputs: Any) -> None:
    inputs["timezone"] = inputs.pop("timezone_")
    figures.fuzzed("CallRequest")
    try:
        request = CallRequest(**inputs, now=NOW)
    except FuseValidationError as error:
        assert_clear_validation_error(error, inputs)
        return
    assert_fuse_accepts(request, NOW)


@FUZZ
@given(
    phone_number=formatted_number(),
    variables=st.dictionaries(VARIABLE_NAMES, st.text(max_size=8), max_size=3),
)
def test_pci_variables_never_reach_the_description_that_is_logged(
    phone_number: str, variables: dict[Any, Any]
) -> None:
    figures.fuzzed("CallRequest (PCI)")
    try:
        request = CallRequest(phone_number, variables=variables, is_pci=True, now=NOW)
    except FuseValidationError:
        return
    described = request.describe()
    assert "PCI" in described
    baseline = CallRequest(phone_number, is_pci=True, now=NOW).describe()
    assert described == baseline, f"PCI variables changed the logged description: {described!r}"


# --- QueueCallOperator: construction, rendering, request building, execute ------------------------


def _is_path_id(value: Any) -> bool:
    """Fuse's application and deployment ids are whole numbers (documented: numeric path ids)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, str) and value.strip().isascii() and value.strip().isdigit()


@FUZZ
@given(
    rendered=st.fixed_dictionaries(
        {
            "application_id": IDS,
            "deployment_id": IDS,
            "phone_number": PHONES,
            "caller_id": CALLER_IDS,
            "post_dial": POST_DIAL,
            "start_timestamp": TIMESTAMPS,
            "end_timestamp": TIMESTAMPS,
            "max_attempts": COUNTS,
            "reattempt_wait": COUNTS,
            "variables": VARIABLES,
            "result_url": URLS,
            "is_pci": FLAGS,
            "calling_hours": HOURS,
            "timezone": ZONES,
        }
    ),
    as_text=st.booleans(),
)
@example(
    rendered={"application_id": "abc", "deployment_id": 2, "phone_number": "+16175550123"}, as_text=False
)
@example(
    rendered={"application_id": "1/../../outbound/5", "deployment_id": 2, "phone_number": "+16175550123"},
    as_text=False,
)
def test_queue_call_operator_sends_one_valid_request_or_none(rendered: dict[str, Any], as_text: bool) -> None:
    """Set the rendered values (native, or as Jinja renders them: text), then execute with Fuse mocked."""
    figures.fuzzed("QueueCallOperator (rendered fields)")
    op = QueueCallOperator(
        task_id="call",
        application_id=1,
        deployment_id=2,
        phone_number="{{ params.phone }}",
        wait_for_completion=False,
    )
    for name, value in rendered.items():
        setattr(op, name, str(value) if as_text and value is not None else value)
    with rm.Mocker() as mock:
        mock.register_uri(rm.ANY, rm.ANY, json={"call_id": "7"})
        try:
            result = op.execute({"ti": TI(), "task_state_store": Store()})  # type: ignore[arg-type]
        except FuseValidationError as error:
            assert mock.call_count == 0, f"bad input ({error}) but {mock.call_count} request(s) sent"
            assert_clear_validation_error(error, rendered)
            return
        assert result == {"call_id": "7"}
        (sent,) = mock.request_history
    assert _is_path_id(op.application_id) and _is_path_id(op.deployment_id), (
        f"a request went to {sent.path} for application_id={op.application_id!r}, "
        f"deployment_id={op.deployment_id!r}"
    )
    assert sent.method == "POST" and sent.path == f"/api/apps/{str(op.application_id).strip()}/" + (
        f"{str(op.deployment_id).strip()}/queue"
    )
    form = parse_form(sent.headers["Content-Type"], sent.body)
    assert parse_queue_form(form, protocol.DEFAULT_VARIABLES_FIELD) is not None


@FUZZ
@given(poll_interval=INTERVALS, timeout=TIMEOUTS)
def test_queue_call_operator_refuses_bad_waits_before_any_request(poll_interval: Any, timeout: Any) -> None:
    """A zero, negative or non-numeric poll_interval/timeout would fail (or hammer Fuse) after queueing."""
    figures.fuzzed("QueueCallOperator (poll_interval, timeout)")
    good_interval = _good_seconds(poll_interval, floor=1.0)  # fuse.test is no loopback host
    good_timeout = timeout is None or _good_seconds(timeout)
    with rm.Mocker() as mock:
        mock.register_uri(rm.ANY, rm.ANY, json={"call_id": "7"})
        mock.get(f"{BASE}/outbound/7", json={"call_details": {"status": "completed"}})
        try:
            op = QueueCallOperator(
                task_id="call",
                application_id=1,
                deployment_id=2,
                phone_number="+16175550123",
                poll_interval=poll_interval,
                timeout=timeout,
            )
            result = op.execute({"ti": TI(), "task_state_store": Store()})  # type: ignore[arg-type]
        except FuseValidationError as error:
            assert not (good_interval and good_timeout), f"good values refused: {error}"
            assert mock.call_count == 0 and error.field in ("poll_interval", "timeout")
            return
    assert good_interval and good_timeout, (
        f"poll_interval={poll_interval!r}, timeout={timeout!r} accepted ({mock.call_count} requests sent)"
    )
    assert result["status"] == "completed"


# --- parsers of what Fuse answers -------------------------------------------------------------


@FUZZ
@given(
    data=JSON_VALUES
    | st.fixed_dictionaries(
        {
            "call_details": JSON_VALUES
            | st.dictionaries(
                st.sampled_from([*sorted(CallDetails._KNOWN), "call_id", "x"]), JSON_VALUES, max_size=8
            )
        }
    ),
    call_id=st.none() | st.text(max_size=5),
)
def test_call_details_from_any_json_is_a_value_or_a_fuse_error(data: Any, call_id: str | None) -> None:
    figures.fuzzed("CallDetails.from_api")
    try:
        details = CallDetails.from_api(data, call_id=call_id)
    except FuseError:
        return
    as_dict = details.to_dict()
    json.dumps(as_dict, allow_nan=False)  # events and XCom values must stay JSON
    assert CallDetails.from_dict(as_dict).status == details.status
    if details.is_terminal and not details.succeeded:
        assert isinstance(details.failure(), FuseError)


@FUZZ
@given(body=JSON_VALUES, link=st.none() | st.text(max_size=40), raw=st.binary(max_size=40))
def test_protocol_parse_functions_never_raise(body: Any, link: str | None, raw: bytes) -> None:
    figures.fuzzed("protocol parse functions")
    call_id = protocol.parse_queue_response(body, link)
    assert call_id is None or (isinstance(call_id, str) and call_id)
    ids = protocol.parse_bulk_queue_response(body)
    assert ids is None or all(isinstance(i, str) for i in ids)
    assert protocol.parse_status_response(body) is None or isinstance(
        protocol.parse_status_response(body), dict
    )
    assert protocol.error_message(body) is None or isinstance(protocol.error_message(body), str)
    for content_type in ("application/json", "application/x-www-form-urlencoded", None):
        protocol.parse_result_callback(raw, content_type)


BODIES = st.one_of(
    st.binary(max_size=60),
    st.builds(lambda v: json.dumps(v).encode(), JSON_VALUES),
    st.builds(lambda v: json.dumps({"call_details": v}).encode(), JSON_VALUES),
    st.builds(lambda v: json.dumps({"call_id": v}).encode(), JSON_VALUES),
    st.builds(lambda v: json.dumps({"error": v}).encode(), JSON_VALUES),
    st.sampled_from([b"[" * 3_000, b'{"a":' * 3_000, b"\xff\xfe{", b"NaN", b"Infinity", b'"\\ud800"']),
)
HEADERS = st.dictionaries(
    st.sampled_from(["Link", "Retry-After", "Content-Type", "X-Other"]),
    st.text(alphabet=string.printable.replace("\n", "").replace("\r", ""), max_size=30),
    max_size=3,
)
STATUSES = st.one_of(
    st.sampled_from([200, 201, 202, 204, 400, 401, 403, 404, 409, 429, 500, 503]), st.integers(200, 599)
)


@FUZZ
@given(status=STATUSES, body=BODIES, headers=HEADERS)
@example(status=200, body=b"[" * 3_000, headers={})
def test_the_hook_turns_any_answer_into_a_value_or_a_fuse_error(
    status: int, body: bytes, headers: dict[str, str]
) -> None:
    figures.fuzzed("FuseHook answers (sync)")
    request = CallRequest("+16175550123", now=NOW)
    hook = FuseHook()
    with rm.Mocker() as mock:
        mock.register_uri(rm.ANY, rm.ANY, status_code=status, content=body, headers=headers)
        for action in (
            lambda: hook.queue_call(1, 2, request),
            lambda: hook.get_call("7"),
            lambda: hook.cancel_pending_calls(1, 2),
            lambda: hook.queue_calls(1, 2, [request, request]),
        ):
            try:
                action()
            except FuseError as error:
                assert KEY not in str(error)
        assert isinstance(hook.test_connection(), tuple)


@FUZZ
@given(status=STATUSES, body=BODIES, headers=HEADERS)
@example(status=200, body=b"[" * 3_000, headers={})
def test_the_trigger_turns_any_status_answer_into_one_json_event(
    status: int, body: bytes, headers: dict[str, str]
) -> None:
    """Whatever the status endpoint answers, the trigger ends with one small JSON event, never a crash."""
    figures.fuzzed("FuseCallTrigger answers (async)")

    async def run() -> list[dict[str, Any]]:
        with aioresponses() as mock:
            mock.get(f"{BASE}/outbound/7", status=status, body=body, headers=headers, repeat=True)
            trigger = FuseCallTrigger("7", poll_interval=0.001, deadline=time.time() + 0.05)
            return [event.payload async for event in trigger.run()]

    events = asyncio.run(run())
    assert len(events) == 1
    json.dumps(events[0], allow_nan=False)
    assert events[0]["status"] in (*protocol.TERMINAL_STATUSES, "timeout", "error")
    assert KEY not in json.dumps(events[0])


@FUZZ
@given(hours=HOURS, zone=ZONES, number=formatted_number())
def test_calling_hours_and_time_zones_give_a_window_or_a_validation_error(
    hours: Any, zone: Any, number: str
) -> None:
    figures.fuzzed("calling_hours, timezone")
    try:
        request = CallRequest(number, calling_hours=hours, timezone=zone, now=NOW)
    except FuseValidationError:
        return
    if hours is None or (isinstance(hours, str) and hours.strip() in ("", "None")):
        assert request.start_timestamp is None and request.end_timestamp is None  # not given: no window
        return
    assert request.start_timestamp is not None and request.end_timestamp is not None
    assert NOW.timestamp() - 1 <= request.start_timestamp < request.end_timestamp
    assert_fuse_accepts(request, NOW)


# --- QueueCallsOperator (campaigns) ---------------------------------------------------------------

ROW = st.fixed_dictionaries(
    {"phone_number": PHONES},
    optional={
        "caller_id": CALLER_IDS,
        "post_dial": POST_DIAL,
        "variables": VARIABLES,
        "extra": JUNK,
    },
)
ROWS = st.one_of(
    st.lists(ROW, max_size=6),
    st.lists(st.fixed_dictionaries({"phone_number": formatted_number()}), min_size=1, max_size=6),
    st.builds(
        json.dumps,
        st.lists(st.fixed_dictionaries({"phone_number": st.sampled_from(VALID_NUMBERS)}), max_size=4),
    ),
    st.builds(
        repr, st.lists(st.fixed_dictionaries({"phone_number": st.sampled_from(VALID_NUMBERS)}), max_size=4)
    ),
    st.sampled_from(
        [
            "[",
            "[{[]: 1}]",
            "[{'phone_number': {1, 2}}]",
            "[" * 200 + "]" * 200,
            "relative.csv",
            "/no/such.csv",
        ]
    ),
    st.lists(JUNK, max_size=3),
    JUNK,
)


def _bulk_answer(request: Any, context: Any) -> dict[str, Any]:
    """Fuse's answer to a bulk upload: one id per CSV row (the ASSUMED shape)."""
    form = parse_form(request.headers["Content-Type"], request.body)
    rows = protocol.parse_bulk_csv(form[protocol.BULK_CSV_FIELD])
    _bulk_answer.next_id += len(rows)  # type: ignore[attr-defined]
    return protocol.bulk_queue_response([str(_bulk_answer.next_id - i) for i in range(len(rows))])  # type: ignore[attr-defined]


_bulk_answer.next_id = 0  # type: ignore[attr-defined]


@FUZZ
@given(
    rendered=st.fixed_dictionaries(
        {"calls": ROWS},
        optional={
            "application_id": IDS,
            "deployment_id": IDS,
            "start_timestamp": TIMESTAMPS,
            "end_timestamp": TIMESTAMPS,
            "max_attempts": COUNTS,
            "reattempt_wait": COUNTS,
            "result_url": URLS,
            "is_pci": FLAGS,
            "calling_hours": HOURS,
            "timezone": ZONES,
            "chunk_size": st.one_of(st.integers(-2, 6000), st.builds(str, st.integers(0, 10)), JUNK),
            "skip_invalid": FLAGS,
            "allow_duplicates": FLAGS,
            "min_completed_ratio": st.one_of(st.floats(-1, 2), st.sampled_from(["0.5", "1", "x", ""]), JUNK),
        },
    )
)
@example(rendered={"calls": "[{[]: 1}]"})
@example(rendered={"calls": [{"phone_number": "+16175550123"}], "application_id": "1/../../outbound/5"})
def test_queue_calls_operator_uploads_valid_rows_once_or_nothing(rendered: dict[str, Any]) -> None:
    """Every campaign input: a FuseValidationError before any upload, or uploads Fuse accepts, each number once."""
    from airflow_provider_fuse.operators.fuse import QueueCallsOperator
    from airflow_provider_fuse.validation import flag

    figures.fuzzed("QueueCallsOperator (rendered fields)")
    op = QueueCallsOperator(
        task_id="calls", application_id=1, deployment_id=2, calls=[], wait_for_completion=False
    )
    for name, value in rendered.items():
        setattr(op, name, value)
    with rm.Mocker() as mock:
        mock.register_uri(rm.ANY, rm.ANY, status_code=599, json={"error": "unexpected request"})
        mock.post(re.compile(r".*/bulk_queue$"), json=_bulk_answer)
        try:
            result = op.execute({"ti": TI(), "task_state_store": Store()})  # type: ignore[arg-type]
        except FuseValidationError as error:
            assert mock.call_count == 0, f"bad input ({error}) but {mock.call_count} request(s) sent"
            return
        uploads = list(mock.request_history)
    assert isinstance(result, dict)
    keys = []
    for sent in uploads:
        assert sent.method == "POST" and re.fullmatch(r"/api/apps/\d+/\d+/bulk_queue", sent.path), sent.path
        form = parse_form(sent.headers["Content-Type"], sent.body)
        for spec in parse_bulk_form(form):  # Fuse's rules, as the simulator enforces them
            keys.append((spec.digits, protocol.PHONE_NUMBER_PATTERN.fullmatch(spec.phone_number)["postd"]))  # type: ignore[index]
    if not flag("allow_duplicates", rendered.get("allow_duplicates", False)):
        assert len(keys) == len(set(keys)), f"a number twice in one campaign: {keys}"


@example(poll_interval=math.nan, timeout=None, rate=10, loopback=True)  # looped forever after uploading
@example(poll_interval=0.01, timeout=None, rate=1000, loopback=False)  # flooded a remote Fuse
@FUZZ
@given(
    poll_interval=st.one_of(FAST_SECONDS, BAD_SECONDS),
    timeout=st.one_of(st.none(), FAST_SECONDS, BAD_SECONDS),
    rate=st.one_of(st.floats(1, 1000), st.integers(1, 1000), BAD_SECONDS),
    loopback=st.booleans(),
)
def test_queue_calls_operator_refuses_bad_waits_before_any_upload(
    poll_interval: Any, timeout: Any, rate: Any, loopback: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zero or non-numeric poll_interval, timeout or request rate must not surface after the uploads.

    Short intervals and high rates are for a loopback Fuse (the simulator) only.
    """
    from airflow_provider_fuse.operators.fuse import QueueCallsOperator

    figures.fuzzed("QueueCallsOperator (poll_interval, timeout, max_requests_per_second)")
    conn = json.loads(os.environ["AIRFLOW_CONN_FUSE_DEFAULT"])  # fuse_connection's, on another host
    monkeypatch.setenv(
        "AIRFLOW_CONN_FUSE_DEFAULT",
        json.dumps({**conn, "host": "http://127.0.0.1:18080/api" if loopback else BASE}),
    )
    good = (
        _good_seconds(poll_interval, floor=0.0 if loopback else 1.0)
        and _good_seconds(rate, ceiling=math.inf if loopback else 20.0)
        and (timeout is None or _good_seconds(timeout))
    )
    with rm.Mocker() as mock:
        mock.register_uri(rm.ANY, rm.ANY, status_code=599, json={"error": "unexpected request"})
        mock.post(re.compile(r".*/bulk_queue$"), json=_bulk_answer)
        mock.get(re.compile(r".*/outbound/\d+$"), json={"call_details": {"status": "completed"}})
        try:
            with time_limit(10):  # a few milliseconds on a quiet machine
                op = QueueCallsOperator(
                    task_id="calls",
                    application_id=1,
                    deployment_id=2,
                    calls=[{"phone_number": "+16175550123"}],
                    poll_interval=poll_interval,
                    timeout=timeout,
                    max_requests_per_second=rate,
                )
                op.execute({"ti": TI(), "task_state_store": Store()})  # type: ignore[arg-type]
        except FuseValidationError as error:
            assert not good, f"good values refused: {error}"
            assert mock.call_count == 0
            return
        except FuseWaitTimeout:
            pass  # a timeout of a few milliseconds may end the wait before the first poll: correct
    assert good, (
        f"poll_interval={poll_interval!r}, timeout={timeout!r}, rate={rate!r} accepted after uploading"
    )

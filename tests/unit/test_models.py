"""CallRequest validation and CallDetails parsing: every rule names its field."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pendulum
import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_fuse.exceptions import FuseCallFailed, FuseError, FuseResponseError, FuseValidationError
from airflow_provider_fuse.models import CallDetails, CallRequest, CallStatus
from airflow_provider_fuse.phone import mask_phone

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
T = int(NOW.timestamp())


def make(**kwargs: Any) -> CallRequest:
    kwargs.setdefault("phone_number", "+16175551234")
    return CallRequest(now=NOW, **kwargs)


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("+16175551234", "tel:+16175551234"),
        ("6175551234", "tel:+16175551234"),
        ("(617) 555-1234", "tel:+16175551234"),
        ("tel:+16175551234", "tel:+16175551234"),
        ("tel:+16175551234;ani=8009957586;postd=2", "tel:+16175551234;ani=+18009957586;postd=2"),
        ("+442079460958", "tel:+442079460958"),
    ],
)
def test_phone_formats_normalise_to_e164_tel_uri(phone: str, expected: str) -> None:
    assert make(phone_number=phone).to_form()["phone_number"] == expected


def test_national_numbers_use_the_default_region() -> None:
    request = CallRequest("020 7946 0958", default_region="GB", now=NOW)
    assert request.phone_number == "+442079460958"


def test_caller_id_and_post_dial_are_appended() -> None:
    request = make(caller_id="+18009957586", post_dial="2#")
    assert request.to_form()["phone_number"] == "tel:+16175551234;ani=+18009957586;postd=2#"


def test_minimal_form_holds_only_the_phone_number() -> None:
    assert make().to_form() == {"phone_number": "tel:+16175551234"}


def test_full_form_fields_are_strings() -> None:
    form = make(
        start_timestamp=T + 60,
        end_timestamp=timedelta(hours=2),
        max_attempts=3,
        reattempt_wait=timedelta(minutes=5),
        variables='{"name": "John Doe"}',
        result_url="https://example.com/fuse",
        is_pci=1,
    ).to_form()
    assert form == {
        "phone_number": "tel:+16175551234",
        "start_timestamp": str(T + 60),
        "end_timestamp": str(T + 7200),
        "max_attempts": "3",
        "reattempt_wait": "300",
        "call_parameters": '{"name":"John Doe"}',
        "result_url": "https://example.com/fuse",
        "is_pci": "1",
    }
    assert all(isinstance(v, str) for v in form.values())


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc),
        pendulum.datetime(2026, 11, 28, 4, 0, tz="America/New_York"),
        "2026-11-28T09:00:00+00:00",
        "2026-11-28T09:00:00Z",
        1_795_856_400,
        "1795856400",
        timedelta(hours=21),
    ],
)
def test_start_timestamp_forms(value: Any) -> None:
    assert make(start_timestamp=value).start_timestamp == 1_795_856_400


def test_rendered_templates_as_strings_are_accepted() -> None:
    request = make(
        max_attempts="2", reattempt_wait="60", is_pci="False", caller_id="", start_timestamp="None"
    )
    assert (request.max_attempts, request.reattempt_wait, request.is_pci, request.caller_id) == (
        2,
        60,
        False,
        None,
    )
    assert request.start_timestamp is None


@pytest.mark.parametrize(
    ("kwargs", "field", "says"),
    [
        ({"phone_number": "123"}, "phone_number", "valid number"),
        ({"phone_number": "+1555"}, "phone_number", "valid number"),
        ({"phone_number": "call me"}, "phone_number", "valid number"),
        ({"phone_number": None}, "phone_number", "required"),
        ({"phone_number": "tel:+16175551234;foo=1"}, "phone_number", "ani"),
        ({"caller_id": "abc"}, "caller_id", "caller id"),
        (
            {"phone_number": "tel:+16175551234;ani=8009957586", "caller_id": "8005550000"},
            "caller_id",
            "one place",
        ),
        ({"post_dial": "12x"}, "post_dial", "0-9"),
        ({"start_timestamp": datetime(2026, 11, 28, 9, 0)}, "start_timestamp", "Naive"),
        ({"start_timestamp": "2026-11-28T09:00:00"}, "start_timestamp", "Naive"),
        ({"start_timestamp": "tomorrow"}, "start_timestamp", "ISO-8601"),
        ({"start_timestamp": 1_795_856_400_000}, "start_timestamp", "milliseconds"),
        ({"start_timestamp": True}, "start_timestamp", "Unix seconds"),
        ({"end_timestamp": T - 1}, "end_timestamp", "already past"),
        ({"start_timestamp": T + 600, "end_timestamp": T + 600}, "end_timestamp", "after start_timestamp"),
        ({"max_attempts": 0}, "max_attempts", "1 to 10"),
        ({"max_attempts": 11}, "max_attempts", "1 to 10"),
        ({"max_attempts": "three"}, "max_attempts", "1 to 10"),
        ({"max_attempts": 3}, "reattempt_wait", "required"),
        ({"max_attempts": 2, "reattempt_wait": 59}, "reattempt_wait", "60 to 86400"),
        ({"max_attempts": 2, "reattempt_wait": 86_401}, "reattempt_wait", "60 to 86400"),
        ({"variables": [1, 2]}, "variables", "JSON object"),
        ({"variables": "[1, 2]"}, "variables", "JSON object"),
        ({"variables": "{oops"}, "variables", "not JSON"),
        ({"variables": {"first name": "Ann"}}, "variables", "letter"),
        ({"variables": {"when": datetime(2026, 1, 1)}}, "variables", "serialisable"),
        ({"result_url": "http://example.com/cb"}, "result_url", "https"),
        ({"result_url": "ftp://example.com"}, "result_url", "https"),
        ({"is_pci": 2}, "is_pci", "1/0"),
    ],
)
def test_bad_input_names_the_field_value_and_rule(kwargs: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(FuseValidationError) as info:
        make(**kwargs)
    assert info.value.field == field
    assert f"Invalid {field}" in str(info.value)
    assert says in str(info.value)
    assert isinstance(info.value, ValueError)


def test_validation_errors_mask_phone_numbers() -> None:
    with pytest.raises(FuseValidationError) as info:
        make(phone_number="+1212555012")
    assert "+1212555012" not in str(info.value)
    assert "+12***012" in str(info.value)


def test_http_result_url_is_allowed_for_loopback() -> None:
    assert make(result_url="http://127.0.0.1:9000/cb").result_url == "http://127.0.0.1:9000/cb"


def test_describe_withholds_variables_of_pci_calls() -> None:
    text = make(variables={"card_last4": "4242"}, is_pci=True).describe()
    assert "card_last4" not in text and "4242" not in text and "+16***234" in text


@given(st.text(max_size=40))
def test_mask_phone_never_shows_the_middle_digits(text: str) -> None:
    masked = mask_phone(text)
    assert masked.count("*") >= 3
    assert len([c for c in masked if c.isdigit()]) <= 8


# --- CallDetails -------------------------------------------------------------------------------

DOCUMENTED = {
    "call_details": {
        "max_attempts": "1",
        "attempts": "1",
        "events": [
            {"event": "queued", "timestamp": 1475095892},
            {"event": "dialing", "timestamp": 1475095893},
            {"event": "connected", "timestamp": 1475095925},
            {"event": "disconnected", "timestamp": 1475095928},
        ],
        "phone_number": "'6173720293'",
        "status": "completed",
        "queued_timestamp": "1475095892",
        "start_timestamp": "1475095925",
        "end_timestamp": "1475095928",
        "reattempt_wait": "300",
        "duration": 3,
    }
}


def test_documented_sample_parses() -> None:
    details = CallDetails.from_api(DOCUMENTED, call_id="7")
    assert details.status == CallStatus.COMPLETED and details.succeeded and details.is_terminal
    assert details.phone_number == "6173720293"
    assert (details.attempts, details.max_attempts, details.reattempt_wait, details.duration) == (
        1,
        1,
        300,
        3,
    )
    assert [e.name for e in details.events] == ["queued", "dialing", "connected", "disconnected"]
    assert details.events[0].at == datetime(2016, 9, 28, 20, 51, 32, tzinfo=timezone.utc)
    assert details.queued_at == details.events[0].at


def test_to_dict_is_small_json_and_masked() -> None:
    data = CallDetails.from_api(DOCUMENTED, call_id="7").to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["phone_number"] == "61***293"
    assert "6173720293" not in json.dumps(data)
    assert CallDetails.from_dict(data).to_dict() == data


def test_odd_variants_are_read_defensively() -> None:
    body = {
        "call_details": {
            "status": "ringing",
            "attempts": 2,
            "max_attempts": "x",
            "duration": "12",
            "events": [{"event": "queued", "timestamp": "1475095892"}, {"nope": 1}, "junk", {"event": "x"}],
            "phone_number": 6173720293,
            "carrier": "acme",
        }
    }
    details = CallDetails.from_api(body)
    assert details.status == "ringing" and not details.is_terminal and not details.succeeded
    assert (details.attempts, details.max_attempts, details.duration) == (2, None, 12)
    assert [e.name for e in details.events] == ["queued"]
    assert details.extra == {"carrier": "acme"}


@pytest.mark.parametrize("status", ["failed", "rejected", "canceled", "completed"])
def test_terminal_statuses(status: str) -> None:
    assert CallStatus.is_terminal(status)
    assert CallStatus.succeeded(status) is (status == "completed")


@pytest.mark.parametrize("status", ["queued", "dialing", "connected", "something-new", ""])
def test_other_statuses_are_not_terminal(status: str) -> None:
    assert not CallStatus.is_terminal(status)


@pytest.mark.parametrize("body", [None, [], "text", {"error": "x"}, {"call_details": "x"}])
def test_bodies_without_call_details_raise_a_fuse_error(body: Any) -> None:
    with pytest.raises(FuseResponseError):
        CallDetails.from_api(body)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_parser_fed_arbitrary_json_raises_only_fuse_errors(body: Any) -> None:
    for candidate in (body, {"call_details": body}):
        try:
            details = CallDetails.from_api(candidate)
        except FuseError:
            continue
        json.dumps(details.to_dict())


def test_failure_names_status_attempts_and_last_events() -> None:
    body = json.loads(json.dumps(DOCUMENTED))
    body["call_details"].update(status="failed", attempts="3", max_attempts="3")
    error = CallDetails.from_api(body, call_id="9").failure()
    assert isinstance(error, FuseCallFailed)
    assert "'failed'" in str(error) and "3 of 3" in str(error) and "disconnected" in str(error)
    assert "6173720293" not in str(error)


# --- calling hours ---------------------------------------------------------------------------

NIGHT_IN_BOSTON = datetime(2026, 11, 27, 4, 0, tzinfo=timezone.utc)  # 23:00 EST the evening before


@pytest.mark.parametrize("hours", [("08:00", "21:00"), "08:00-21:00", "['08:00', '21:00']"])
def test_calling_hours_move_the_start_to_the_callees_morning(hours: Any) -> None:
    request = CallRequest("+16175551234", calling_hours=hours, now=NIGHT_IN_BOSTON)
    assert request.start_timestamp == int(datetime(2026, 11, 27, 13, 0, tzinfo=timezone.utc).timestamp())
    assert request.end_timestamp == int(datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc).timestamp())
    assert request.calling_notes and any("moved" in note or "start" in note for note in request.calling_notes)
    assert request.to_form()["start_timestamp"] == str(request.start_timestamp)


def test_calling_hours_timezone_override() -> None:
    request = CallRequest(
        "+16175551234", calling_hours=("08:00", "21:00"), timezone="Europe/London", now=NIGHT_IN_BOSTON
    )
    assert request.start_timestamp == int(datetime(2026, 11, 27, 8, 0, tzinfo=timezone.utc).timestamp())


def test_calling_hours_with_no_allowed_instant_before_the_end_name_the_field() -> None:
    with pytest.raises(FuseValidationError) as info:
        CallRequest(
            "+16175551234",
            end_timestamp=datetime(2026, 11, 27, 6, 0, tzinfo=timezone.utc),
            calling_hours=("08:00", "21:00"),
            now=NIGHT_IN_BOSTON,
        )
    assert info.value.field == "calling_hours"
    assert "+16175551234" not in str(info.value)


def test_without_calling_hours_nothing_moves() -> None:
    request = CallRequest("+16175551234", calling_hours="", now=NIGHT_IN_BOSTON)
    assert (request.start_timestamp, request.end_timestamp, request.calling_notes) == (None, None, ())


def test_status_members_answer_for_themselves() -> None:
    assert CallStatus.COMPLETED.is_terminal() and CallStatus.COMPLETED.succeeded()
    assert CallStatus.REJECTED.is_terminal() and not CallStatus.REJECTED.succeeded()
    assert not CallStatus.DIALING.is_terminal()


def test_call_details_read_back_unreadable_numbers_as_none() -> None:
    details = CallDetails.from_api(
        {
            "call_details": {
                "status": 10**5000,
                "call_id": "../5",
                "attempts": "9" * 19,
                "max_attempts": "9" * 18,
                "duration": 1e300,
                "phone_number": ["x"],
                "events": [{"event": 7, "timestamp": 1800000000}, {"event": ["x"], "timestamp": 1800000000}],
            }
        },
        call_id="5",
    )
    assert (details.call_id, details.status, details.attempts, details.max_attempts) == (
        "5",
        "unknown",
        None,
        10**18 - 1,
    )
    assert (details.duration, details.phone_number, [e.name for e in details.events]) == (None, None, ["7"])


def test_call_details_repr_is_masked_like_its_dict() -> None:
    details = CallDetails.from_api(DOCUMENTED, call_id="7")
    assert "6173720293" not in repr(details) and "'61***293'" in repr(details)
    assert repr(details).startswith("CallDetails(call_id='7', status=")


def test_call_request_repr_describes_it_masked() -> None:
    request = CallRequest("+16175551234", post_dial="99#", variables={"pin": "4321"}, is_pci=True, now=NOW)
    assert repr(request) == "CallRequest(to +16***234, PCI (variables withheld))"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3", 3), (" 3 ", 3), ("-3", -3), ("007", 7), ("٣", None), ("²", None), ("3.0", None), ("", None)],
)
def test_counts_written_as_text_are_read_as_ascii_whole_numbers_only(text: str, expected: int | None) -> None:
    """The common case skips the regex (issue 18) and reads what the regex read, no more."""
    details = CallDetails.from_api({"call_details": {"status": "queued", "attempts": text, "call_id": "77"}})
    assert (details.attempts, details.call_id) == (expected, "77")

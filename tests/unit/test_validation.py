"""validation.py: one coercer per kind of rendered value, and CallOptions checked once for a call and a campaign."""

from __future__ import annotations

import dataclasses
import inspect
import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_fuse import campaign, fields, models, protocol, validation
from airflow_provider_fuse.calling_hours import CallingHours
from airflow_provider_fuse.exceptions import FuseValidationError
from airflow_provider_fuse.models import CallRequest
from airflow_provider_fuse.validation import CallOptions

NOW = datetime(2026, 6, 2, 16, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), (1, True), (0, False), ("true", True), (" FALSE ", False), ("1", True)],
)
def test_a_flag_reads_booleans_ones_and_zeros_and_their_text(value: Any, expected: bool) -> None:
    assert validation.flag("is_pci", value) is expected


@pytest.mark.parametrize("value", ["", " ", "None", None, 2, -1, "yes", 1.0, []])
def test_a_flag_refuses_anything_else_blank_included_naming_the_field(value: Any) -> None:
    with pytest.raises(FuseValidationError, match=r"^Invalid skip_invalid: .*True/False or 1/0"):
        validation.flag("skip_invalid", value)


def test_call_and_campaign_flags_follow_the_same_rule() -> None:
    """A blank is_pci fails a single call and a campaign alike (it used to mean False for one of them)."""
    with pytest.raises(FuseValidationError, match="Invalid is_pci"):
        CallRequest("+16175550123", is_pci="", now=NOW)
    with pytest.raises(FuseValidationError, match="Invalid is_pci"):
        campaign.plan_campaign([{"phone_number": "+16175550123"}], {"is_pci": ""}, chunk_size=10, now=NOW)


@pytest.mark.parametrize("value", [None, "", "  ", "None"])
def test_blank_is_not_given(value: Any) -> None:
    assert validation.blank(value) is None


@pytest.mark.parametrize("value", [0, "0", "x", False, [], {}])
def test_values_that_look_empty_are_still_given(value: Any) -> None:
    assert validation.blank(value) is value


@pytest.mark.parametrize(("value", "expected"), [(2, 2.0), (2.5, 2.5), (" 2.5 ", 2.5), ("-3", -3.0)])
def test_a_number_is_a_finite_int_float_or_its_decimal_text(value: Any, expected: float) -> None:
    assert validation.number("chunk_size", value, "A number.") == expected


@pytest.mark.parametrize("value", [True, "1e3", "inf", "nan", math.inf, math.nan, 10**400, "", None, [1]])
def test_a_number_refuses_booleans_exponents_and_non_finite_values(value: Any) -> None:
    with pytest.raises(FuseValidationError, match=r"^Invalid timeout: "):
        validation.number("timeout", value, "A number.")


def test_a_duration_is_a_timedelta_or_a_number_of_seconds() -> None:
    assert validation.duration("timeout", timedelta(minutes=2), "") == 120.0
    assert validation.duration("timeout", "90", "") == 90.0


def test_campaign_sizes_and_ratios_use_the_same_number_rule() -> None:
    """chunk_size 'inf' raised OverflowError and ratio '1e-1' was accepted; both now follow number()."""
    for bad in ("inf", "nan", "1e3"):
        with pytest.raises(FuseValidationError, match="Invalid chunk_size"):
            campaign.chunk_size_setting(bad)
        with pytest.raises(FuseValidationError, match="Invalid min_completed_ratio"):
            campaign.ratio_setting(bad)
    assert campaign.chunk_size_setting(" 500 ") == 500


def test_call_options_are_validated_once_into_plain_values() -> None:
    options = CallOptions.validate(
        start_timestamp="2026-06-03T09:00:00+00:00",
        end_timestamp=timedelta(days=2),
        max_attempts="3",
        reattempt_wait=timedelta(minutes=5),
        result_url=" https://example.com/fuse ",
        is_pci="1",
        calling_hours="['08:00', '21:00']",
        timezone=" America/New_York ",
        now=NOW,
    )
    assert options == CallOptions(
        start_timestamp=int(datetime(2026, 6, 3, 9, tzinfo=timezone.utc).timestamp()),
        end_timestamp=int((NOW + timedelta(days=2)).timestamp()),
        max_attempts=3,
        reattempt_wait=300,
        result_url="https://example.com/fuse",
        is_pci=True,
        calling_hours=CallingHours.parse(("08:00", "21:00")),
        timezone="America/New_York",
    )


def test_a_time_zone_is_kept_only_with_calling_hours() -> None:
    assert CallOptions.validate(timezone="Mars/Olympus", now=NOW).timezone is None
    with pytest.raises(FuseValidationError, match="Invalid timezone"):
        CallOptions.validate(calling_hours="08:00-21:00", timezone="Mars/Olympus", now=NOW)


def test_the_option_fields_name_call_options_and_the_call_fields_a_row_does_not_hold() -> None:
    assert tuple(field.name for field in dataclasses.fields(CallOptions)) == fields.OPTION_FIELDS
    assert set(fields.OPTION_FIELDS) | set(fields.ROW_FIELDS) == set(fields.CALL_FIELDS)
    assert not set(fields.OPTION_FIELDS) & set(fields.ROW_FIELDS)
    assert set(fields.CALL_FIELDS) <= set(inspect.signature(CallRequest).parameters)


def test_a_call_request_carries_its_options_with_the_window_fitted_to_its_callee() -> None:
    options = CallOptions.validate(
        max_attempts=2, reattempt_wait=60, calling_hours=("09:00", "17:00"), now=NOW
    )
    request = CallRequest.with_options(options, "+16175550123", now=NOW)  # Boston: 12:00 at NOW
    assert (request.max_attempts, request.reattempt_wait) == (2, 60)
    assert request.start_timestamp == int(NOW.timestamp())
    assert request.end_timestamp == int(datetime(2026, 6, 2, 21, tzinfo=timezone.utc).timestamp())
    assert request.to_form()[protocol.END_TIMESTAMP] == str(request.end_timestamp)


def test_campaign_settings_are_validated_once_and_without_a_made_up_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    validated: list[dict[str, Any]] = []
    dialled: list[str] = []
    real_validate, real_e164 = CallOptions.validate.__func__, models.to_e164  # type: ignore[attr-defined]

    def counting_validate(cls: type[CallOptions], **kwargs: Any) -> CallOptions:
        validated.append(kwargs)
        return real_validate(cls, **kwargs)

    def spying_e164(value: str, **kwargs: Any) -> str:
        dialled.append(value)
        return real_e164(value, **kwargs)

    monkeypatch.setattr(CallOptions, "validate", classmethod(counting_validate))
    monkeypatch.setattr(models, "to_e164", spying_e164)
    rows = [{"phone_number": number} for number in ("+16175550101", "+13125550102", "+14155550103")]
    plan = campaign.plan_campaign(
        rows,
        {"max_attempts": 2, "reattempt_wait": 60, "calling_hours": "09:00-17:00"},
        chunk_size=10,
        now=NOW,
    )
    assert plan.call_count == 3
    assert len(validated) == 1
    assert dialled == ["+16175550101", "+13125550102", "+14155550103"]


def test_a_bad_campaign_setting_is_raised_once_before_any_row_is_read() -> None:
    rows = [{"phone_number": "not a number"}] * 3
    with pytest.raises(FuseValidationError, match=r"^Invalid reattempt_wait") as info:
        campaign.plan_campaign(rows, {"max_attempts": 3}, chunk_size=10, now=NOW)
    assert info.value.field == "reattempt_wait"


def test_a_row_without_a_phone_number_is_a_bad_row_not_a_crash() -> None:
    with pytest.raises(FuseValidationError, match="row 1: Invalid phone_number"):
        campaign.plan_campaign([{"variables": {"name": "Ann"}}], {}, chunk_size=10, now=NOW)


# --- polling limits and reserved variable names ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "loopback"), [(1, False), ("1.0", False), (timedelta(seconds=90), False), (0.01, True)]
)
def test_a_poll_interval_is_a_second_or_more_unless_fuse_is_on_loopback(value: Any, loopback: bool) -> None:
    assert validation.polling_interval("poll_interval", value, loopback=loopback) == validation.duration(
        "poll_interval", value, ""
    )


@pytest.mark.parametrize(
    ("value", "loopback"), [(0.999, False), ("0.5", False), (0, True), (-1, True), (math.nan, True)]
)
def test_a_poll_interval_below_the_floor_or_not_positive_is_refused_by_name(
    value: Any, loopback: bool
) -> None:
    with pytest.raises(FuseValidationError, match=r"^Invalid poke_interval: "):
        validation.polling_interval("poke_interval", value, loopback=loopback)


def test_a_campaign_rate_has_a_ceiling_unless_fuse_is_on_loopback() -> None:
    assert validation.request_rate("20", loopback=False) == 20.0
    assert validation.request_rate(1000, loopback=True) == 1000.0
    for value, loopback in ((20.5, False), (0, True), ("fast", True)):
        with pytest.raises(FuseValidationError, match=r"max_requests_per_second.*at most 20"):
            validation.request_rate(value, loopback=loopback)


def test_a_wait_applies_the_floor_to_its_poll_interval_only() -> None:
    assert validation.wait_settings(0.5, 0.2, loopback=True) == (0.5, 0.2)
    assert validation.wait_settings(1, 0.2, loopback=False) == (1.0, 0.2)
    with pytest.raises(FuseValidationError, match="poll_interval"):
        validation.wait_settings(0.5, 60, loopback=False)


@pytest.mark.parametrize(
    "name", [*sorted(protocol.REQUEST_FIELDS), "call_parameters", "Destination", "IS_PCI"]
)
def test_variables_named_like_a_request_field_are_reserved(name: str) -> None:
    with pytest.raises(FuseValidationError, match=r"^Invalid variables: a variable named") as info:
        validation.parse_variables({name: "x"})
    assert info.value.field == "variables"


def test_the_configured_variables_field_is_reserved_too_and_other_names_are_not() -> None:
    validation.check_variable_names(["name", "destination_city", "phone"], "vars")
    with pytest.raises(FuseValidationError, match="'Vars'"):
        validation.check_variable_names(["name", "Vars"], " vars ")
    with pytest.raises(FuseValidationError, match="'call_parameters'"):
        validation.parse_variables('{"call_parameters": 1}', "vars")  # the default stays reserved
    assert validation.parse_variables({"vars": 1}) == {"vars": 1}


def test_the_reserved_names_are_the_fields_the_hook_sends() -> None:
    request = CallRequest(
        "+16175550123",
        start_timestamp=NOW + timedelta(hours=1),
        end_timestamp=NOW + timedelta(hours=2),
        max_attempts=2,
        reattempt_wait=60,
        result_url="https://example.com/cb",
        is_pci=True,
        variables={"x": 1},
        now=NOW,
    )
    single = set(request.to_form()) - {protocol.DEFAULT_VARIABLES_FIELD}
    bulk = set(request.shared_form()) | {protocol.BULK_CSV_FIELD, protocol.BULK_DESTINATION_COLUMN}
    assert single | bulk == protocol.REQUEST_FIELDS

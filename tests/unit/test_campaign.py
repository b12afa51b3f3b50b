"""Campaign rows, validation, chunking and the result summary: pure functions, no Fuse."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_fuse import protocol
from airflow_provider_fuse.campaign import (
    MAX_CALLS_IN_RESULT,
    MAX_ROWS_IN_MESSAGE,
    MAX_SKIPPED_IN_RESULT,
    CampaignCall,
    CampaignPlan,
    CampaignResult,
    QueuedChunk,
    RowError,
    chunk_size_setting,
    pack_ids,
    plan_campaign,
    ratio_setting,
    rows_from_csv,
    rows_from_value,
    unpack_ids,
)
from airflow_provider_fuse.exceptions import FuseInvalidRowsError, FuseValidationError
from airflow_provider_fuse.validation import flag as flag_setting

NOW = datetime(2026, 6, 2, 16, 0, tzinfo=timezone.utc)  # 12:00 in Boston, 09:00 in San Francisco
BOSTON, CHICAGO, FRISCO = "+16175550101", "+13125550102", "+14155550103"


def plan(rows: list[Any], chunk_size: int = 1000, **settings: Any) -> Any:
    options = {k: settings.pop(k) for k in ("skip_invalid", "allow_duplicates") if k in settings}
    return plan_campaign(rows, settings, chunk_size=chunk_size, now=NOW, **options)


def numbers(count: int, area: str = "617") -> list[dict[str, Any]]:
    return [{"phone_number": f"+1{area}555{n:04d}", "variables": {"n": n}} for n in range(count)]


# --- reading rows ------------------------------------------------------------------------------


def test_csv_rows_read_phone_caller_id_post_dial_and_every_other_column_as_a_variable() -> None:
    text = (
        "\ufeffphone_number,caller_id,post_dial,name,appointment\n"
        '+16175550101,+18009957586,,"Smith, Ann",Monday 9:00\n'
        "\n"
        "6175550102,,12#,Bob,\n"
    )
    assert rows_from_csv(text) == [
        {
            "phone_number": "+16175550101",
            "caller_id": "+18009957586",
            "variables": {"name": "Smith, Ann", "appointment": "Monday 9:00"},
        },
        {"phone_number": "6175550102", "post_dial": "12#", "variables": {"name": "Bob"}},
    ]


@pytest.mark.parametrize(
    ("header", "complaint"),
    [
        ("number,name", "phone_number"),
        ("phone_number,first name", "first name"),
        ("phone_number,name,name", "unique"),
    ],
)
def test_a_bad_csv_header_is_one_error_for_the_file(header: str, complaint: str) -> None:
    with pytest.raises(FuseValidationError, match=complaint) as info:
        rows_from_csv(f"{header}\n+16175550101,x\n")
    assert info.value.field == "calls"


def test_calls_given_as_a_rendered_template_read_as_the_list_they_were() -> None:
    rows = [{"phone_number": BOSTON, "variables": {"name": "Ann"}}]
    assert rows_from_value(rows) == rows
    assert rows_from_value(json.dumps(rows)) == rows
    assert rows_from_value(repr(rows)) == rows  # str() of a list, as Jinja renders an XCom
    for bad in ({"phone_number": BOSTON}, "not a list", 42):
        with pytest.raises(FuseValidationError, match="list of dicts"):
            rows_from_value(bad)


# --- validation --------------------------------------------------------------------------------


def test_mixed_good_and_bad_rows_are_all_reported_at_once_with_row_field_masked_value_and_rule() -> None:
    rows = [
        {"phone_number": BOSTON, "variables": {"name": "Ann"}},
        {"phone_number": "+1617555"},  # too short
        {"phone_number": CHICAGO, "caller_id": "12"},
        {"phone_number": FRISCO, "variables": {"first name": "Eve"}},
        "+16175550105",
        {"phone_number": "+16175550106", "phone": "typo"},
        {"phone_number": "+16175550107", "post_dial": "12a"},
        {"phone_number": "+16175550108"},
    ]
    with pytest.raises(FuseInvalidRowsError) as info:
        plan(rows)
    error = info.value
    assert [(e.row, e.field) for e in error.errors] == [
        (2, "phone_number"),
        (3, "caller_id"),
        (4, "variables"),
        (5, "row"),
        (6, "phone"),
        (7, "post_dial"),
    ]
    message = str(error)
    assert message.startswith("Invalid calls: 6 of 8 rows. Nothing was sent.")
    assert "skip_invalid=True" in message
    assert "row 2: Invalid phone_number: +***. Give a valid number in E.164" in message
    assert "row 4: Invalid variables: key 'first name'" in message
    assert "row 7: Invalid post_dial: *** (hidden)" in message  # DTMF may be a PIN
    assert "6175550101" not in message and "12a" not in message


def test_skip_invalid_keeps_the_valid_rows_and_lists_the_skipped_ones() -> None:
    rows = [{"phone_number": BOSTON}, {"phone_number": "123"}, {"phone_number": CHICAGO}]
    result = plan(rows, skip_invalid=True)
    assert [row.row for chunk in result.chunks for row in chunk.rows] == [1, 3]
    assert [(e.row, e.field) for e in result.skipped] == [(2, "phone_number")]
    with pytest.raises(FuseInvalidRowsError, match="No row is valid"):
        plan([{"phone_number": "123"}], skip_invalid=True)


def test_a_bad_setting_is_raised_once_not_once_per_row() -> None:
    rows = numbers(50)
    with pytest.raises(FuseValidationError, match="max_attempts") as info:
        plan(rows, max_attempts=20)
    assert not isinstance(info.value, FuseInvalidRowsError)
    with pytest.raises(FuseValidationError, match="calling_hours") as info:
        plan(rows, calling_hours="25:00-08:00")
    assert not isinstance(info.value, FuseInvalidRowsError)
    with pytest.raises(FuseValidationError, match="timezone"):
        plan(rows, calling_hours="08:00-21:00", timezone="Mars/Olympus")


def test_a_number_twice_is_an_invalid_row_unless_allowed() -> None:
    rows = [{"phone_number": BOSTON}, {"phone_number": "tel:6175550101;ani=8009957586"}]
    with pytest.raises(FuseInvalidRowsError, match="row 2: Duplicate \\+16\\*\\*\\*101: row 1") as info:
        plan(rows)
    assert info.value.errors[0].field == "phone_number"
    assert plan(rows, allow_duplicates=True).call_count == 2
    extensions = [{"phone_number": BOSTON, "post_dial": "1"}, {"phone_number": BOSTON, "post_dial": "2"}]
    assert plan(extensions).call_count == 2  # one switchboard, two people


def test_a_long_list_of_bad_rows_is_listed_up_to_a_hundred_then_counted() -> None:
    rows = [{"phone_number": "123"}] * (MAX_ROWS_IN_MESSAGE + 30) + [{"phone_number": BOSTON, "x": 1}] * 5
    with pytest.raises(FuseInvalidRowsError) as info:
        plan(rows)
    message = str(info.value)
    assert len(info.value.errors) == 135
    assert message.count("\n  row ") == MAX_ROWS_IN_MESSAGE
    assert "... and 35 more rows (phone_number 30, x 5)" in message


def test_operator_settings_given_as_rendered_strings() -> None:
    assert chunk_size_setting("500") == 500
    assert ratio_setting("0.8") == 0.8
    assert flag_setting("skip_invalid", "True") is True and flag_setting("x", "0") is False
    for bad in (0, "5001", 2.5, True):
        with pytest.raises(FuseValidationError, match="chunk_size"):
            chunk_size_setting(bad)
    for bad in ("-0.1", 1.5, "most"):
        with pytest.raises(FuseValidationError, match="min_completed_ratio"):
            ratio_setting(bad)
    with pytest.raises(FuseValidationError, match="skip_invalid"):
        flag_setting("skip_invalid", "maybe")


# --- chunking ----------------------------------------------------------------------------------


def test_chunks_are_cut_in_row_order_and_computed_the_same_on_every_try() -> None:
    rows = numbers(25)
    first, again = plan(rows, chunk_size=10), plan(rows, chunk_size=10)
    assert [len(chunk.rows) for chunk in first.chunks] == [10, 10, 5]
    assert [chunk.rows[0].row for chunk in first.chunks] == [1, 11, 21]
    assert [c.fingerprint for c in first.chunks] == [c.fingerprint for c in again.chunks]
    later = plan_campaign(rows, {}, chunk_size=10, now=NOW + timedelta(minutes=5))
    assert [c.fingerprint for c in later.chunks] == [c.fingerprint for c in first.chunks]
    changed = [*rows[:12], {**rows[12], "variables": {"n": "changed"}}, *rows[13:]]
    fingerprints = [c.fingerprint for c in plan(changed, chunk_size=10).chunks]
    assert fingerprints[0] == first.chunks[0].fingerprint and fingerprints[1] != first.chunks[1].fingerprint


def test_calling_hours_group_rows_by_time_zone_one_window_per_upload() -> None:
    rows = [{"phone_number": n} for n in (BOSTON, FRISCO, "+16175550111", CHICAGO, "+14155550113")]
    result = plan(rows, calling_hours=("08:00", "21:00"), chunk_size=1)
    groups = [(chunk.rows[0].group, [r.row for r in chunk.rows]) for chunk in result.chunks]
    assert groups == [
        (("America/New_York",), [1]),
        (("America/New_York",), [3]),
        (("America/Los_Angeles",), [2]),
        (("America/Los_Angeles",), [5]),
        (("America/Chicago",), [4]),
    ]
    windows = {chunk.rows[0].group[0]: chunk.requests[0].shared_form() for chunk in result.chunks}
    hour = 3600
    assert int(windows["America/Los_Angeles"][protocol.END_TIMESTAMP]) == int(NOW.timestamp()) + 12 * hour
    assert int(windows["America/New_York"][protocol.END_TIMESTAMP]) == int(NOW.timestamp()) + 9 * hour
    assert all(chunk.start == chunk.requests[-1].start_timestamp for chunk in result.chunks)
    notes = result.calling_notes()
    assert len(notes) == 3 and notes[0].startswith("2 call(s) in America/New_York: end_timestamp set")


def test_calling_hours_that_open_later_move_the_start_of_that_zone_only() -> None:
    result = plan([{"phone_number": BOSTON}, {"phone_number": FRISCO}], calling_hours="10:00-20:00")
    boston, frisco = (chunk.start for chunk in result.chunks)
    assert boston == int(NOW.timestamp())  # 12:00 in Boston: open now
    assert frisco == int(NOW.timestamp()) + 3600  # 09:00 in San Francisco: opens in an hour


def test_a_timezone_override_puts_every_row_in_one_group() -> None:
    rows = [{"phone_number": n} for n in (BOSTON, FRISCO, CHICAGO)]
    result = plan(rows, calling_hours="08:00-21:00", timezone="Europe/Berlin")
    assert len(result.chunks) == 1 and result.chunks[0].rows[0].group == ("Europe/Berlin",)


def test_bulk_csv_of_a_chunk_has_the_assumed_layout() -> None:
    rows = [
        {"phone_number": "617-555-0101", "caller_id": "8009957586", "variables": {"name": "Smith, Ann"}},
        {"phone_number": CHICAGO, "post_dial": "1w2#", "variables": {"slot": 9, "note": 'say "hi"'}},
    ]
    (chunk,) = plan(rows).chunks
    data = protocol.build_bulk_csv((r.tel_uri, r.variables) for r in chunk.requests)
    assert data.decode().splitlines() == [
        "destination,name,slot,note",
        'tel:+16175550101;ani=+18009957586,"Smith, Ann",,',
        'tel:+13125550102;postd=1w2#,,9,"say ""hi"""',
    ]
    assert protocol.parse_bulk_csv(data) == [
        ("tel:+16175550101;ani=+18009957586", {"name": "Smith, Ann"}),
        ("tel:+13125550102;postd=1w2#", {"slot": "9", "note": 'say "hi"'}),
    ]


def test_calls_are_put_back_in_row_order_after_the_zone_groups() -> None:
    rows = [{"phone_number": n} for n in (BOSTON, FRISCO, "+16175550111")]
    result = plan(rows, calling_hours="08:00-21:00")  # chunks: Boston rows 1 and 3, then row 2
    chunks = result.queued_chunks([["b1", "b3"], ["f2"]])
    assert [c.call_id for c in result.result_queued(chunks).calls] == ["b1", "f2", "b3"]
    assert [CampaignPlan.chunk_calls(chunk)["rows"] for chunk in result.chunks] == [["1", "3"], ["2"]]
    assert result.queued() == {
        "rows": 3,
        "chunks": 2,
        "untracked_chunks": [],
        "skipped": [],
        "skipped_count": 0,
    }


def test_rows_of_a_chunk_queued_without_ids_are_untracked_in_row_order() -> None:
    rows = [{"phone_number": n} for n in (BOSTON, FRISCO, "+16175550111")]
    result = plan(rows, calling_hours="08:00-21:00")  # chunks: Boston rows 1 and 3, then row 2
    chunks = result.queued_chunks([None, ["13"]])
    queued = result.queued([0])
    done = CampaignResult.tracked([["13", "failed", 1, "16***002"]], queued, chunks=chunks)
    assert [(c.row, c.call_id, c.status) for c in done.calls] == [
        (1, None, "untracked"),
        (2, "13", "failed"),
        (3, None, "untracked"),
    ]
    assert [c.row for c in done.not_reached] == [2] and done.completed_ratio == 0.0
    assert done.to_xcom()["untracked"] == 2 and done.finished


# --- the result --------------------------------------------------------------------------------


def test_ids_pack_into_runs_and_back() -> None:
    ids = [str(n) for n in range(1000, 11000)]
    assert pack_ids(ids) == [[1000, 10_000]]
    mixed = ["7", "8", "9", "abc", "11", "007", "12", "0"]
    assert pack_ids(mixed) == [[7, 3], "abc", "11", "007", "12", "0"]
    assert unpack_ids(pack_ids(mixed)) == mixed and unpack_ids(pack_ids(ids)) == ids


def test_result_counts_reached_and_not_reached_and_round_trips_through_xcom() -> None:
    states = [
        ["1", "completed", 1, "16***101"],
        ["2", "failed", 3, "16***102"],
        ["3", "queued", 0, "16***103"],
        ["4", None, None, None],
    ]
    queued = {
        "rows": 5,
        "call_rows": [[1, 2], "4", "5"],
        "skipped": [[3, "phone_number", "Invalid phone_number: ***."]],
        "skipped_count": 1,
    }
    result = CampaignResult.tracked(states, queued)
    assert result.totals == {"completed": 1, "failed": 1, "queued": 1, "unknown": 1}
    assert [c.row for c in result.reached] == [1] and [c.row for c in result.not_reached] == [2, 4, 5]
    assert [c.call_id for c in result.pending] == ["3", "4"] and not result.finished
    assert result.completed_ratio == 0.25
    assert result.describe() == "1 of 4 calls completed (25.0%): failed 1, queued 1, unknown 1"
    value = result.to_xcom()
    assert value["calls"][0] == ["1", 1, "16***101", "completed", 1]
    assert value["skipped"] == [[3, "phone_number", "Invalid phone_number: ***."]]
    assert json.loads(json.dumps(value)) == value
    assert CampaignResult.from_xcom(value) == result
    assert result.by_row()[2] == CampaignCall("2", 2, "16***102", "failed", 3)


def test_an_empty_campaign_completed_everything_it_was_asked() -> None:
    assert CampaignResult(0, ()).completed_ratio == 1.0 and CampaignResult(0, ()).finished


def test_the_result_of_ten_thousand_calls_stays_under_one_megabyte() -> None:
    states = [[str(1_000_000 + n), "completed", 3, "16***234"] for n in range(10_000)]
    skipped = [
        RowError(n, "phone_number", "Invalid phone_number: +1617***12. " + "x" * 150) for n in range(5000)
    ]
    queued = {
        "rows": 15_000,
        "call_rows": pack_ids(range(5001, 15_001)),
        "skipped": [[e.row, e.field, e.message] for e in skipped],
        "skipped_count": len(skipped),
    }
    value = CampaignResult.tracked(states, queued).to_xcom()
    assert len(json.dumps(value)) < 1_000_000
    assert len(value["skipped"]) == 1000 and value["skipped_count"] == 5000


def test_packing_checks_every_id_as_a_call_id() -> None:
    with pytest.raises(FuseValidationError, match="call_id"):
        pack_ids(["7", "8", "²"])
    assert pack_ids([1, 2, 3]) == [[1, 3]]  # row numbers pack too


# --- input that is no campaign, names that are reserved, keyed fingerprints ----------------------


def test_a_csv_header_without_phone_number_is_not_quoted() -> None:
    """The text may be any file on the worker: its first line is counted, not shown."""
    with pytest.raises(FuseValidationError, match="3 column") as info:
        rows_from_csv("root:x:0:0,root,/bin/bash\n")
    assert "root" not in str(info.value) and "bash" not in str(info.value)


def test_a_csv_the_csv_module_cannot_read_is_a_validation_error_naming_the_line() -> None:
    with pytest.raises(FuseValidationError, match=r"CSV line 2") as info:
        rows_from_csv('phone_number,notes\n+16175550101,"' + "s3cret" * 30_000 + '"\n')
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize("column", ["destination", "Phone_Number", "CSV", "call_parameters"])
def test_a_csv_column_named_like_a_request_field_is_refused_for_the_file(column: str) -> None:
    with pytest.raises(FuseValidationError, match=column) as info:
        rows_from_csv(f"phone_number,{column}\n+16175550101,+19005550199\n")
    assert info.value.field == "variables"


def test_a_row_variable_named_like_the_variables_field_is_a_bad_row() -> None:
    rows = [{"phone_number": BOSTON, "variables": {"Vars": "x"}}, {"phone_number": CHICAGO}]
    checked = plan_campaign(rows, {}, chunk_size=10, skip_invalid=True, variables_field="vars", now=NOW)
    assert [(e.row, e.field) for e in checked.skipped] == [(1, "variables")]
    assert plan_campaign(rows, {}, chunk_size=10, variables_field="other", now=NOW).call_count == 2


def test_fingerprints_are_keyed_by_the_secret() -> None:
    rows = numbers(3)

    def fingerprints(secret: str | None) -> list[str]:
        return [c.fingerprint for c in plan_campaign(rows, {}, chunk_size=2, secret=secret, now=NOW).chunks]

    assert fingerprints("dk-1") == fingerprints("dk-1") != fingerprints("dk-2")
    assert fingerprints(None) == fingerprints(None) != fingerprints("dk-1")  # a key of this process
    chunk = plan_campaign(rows, {}, chunk_size=2, secret="dk-1", now=NOW).chunks[0]
    assert "dk-1" not in repr(chunk) and repr(chunk.key) not in repr(chunk)


def hundred_thousand_calls(call_id: Any = str) -> tuple[CampaignResult, list[int]]:
    """100,000 queued calls in 20 uploads, every third failed; returns the result and the failed rows."""
    chunks, states, failed = [], {}, []
    for first in range(1, 100_001, 5000):
        rows = list(range(first, first + 5000))
        ids = [call_id(90_000_000 + 7 * row) for row in rows]
        chunks.append(QueuedChunk(ids, rows, ["+16***" + f"{row % 1000:03d}" for row in rows]))
        for row, each in zip(rows, ids, strict=True):
            status = "failed" if row % 3 == 0 else "completed"
            states[each] = [each, status, 3, None]
            if status == "failed":
                failed.append(row)
    queued = {"rows": 100_000, "chunks": 20, "untracked_chunks": [], "skipped": [], "skipped_count": 0}
    return CampaignResult.tracked(list(states.values()), queued, chunks=chunks), failed


def test_the_result_of_100000_calls_stays_under_one_megabyte_listing_the_first_calls_not_reached() -> None:
    result, failed = hundred_thousand_calls()
    value = result.to_xcom()
    assert len(json.dumps(value)) < 1_000_000
    assert value["truncated"] is True and value["calls_count"] == 100_000
    assert [call[1] for call in value["calls"]] == failed[:MAX_CALLS_IN_RESULT]
    assert {call[3] for call in value["calls"]} == {"failed"}
    assert value["totals"] == {"completed": 100_000 - len(failed), "failed": len(failed)}
    assert value["completed_ratio"] == round(1 - len(failed) / 100_000, 4) and value["finished"] is True
    back = CampaignResult.from_xcom(json.loads(json.dumps(value)))
    assert back.truncated and back.totals == result.totals and back.describe() == result.describe()
    assert back.completed_ratio == result.completed_ratio and back.finished and back.call_count == 100_000
    assert [call.row for call in back.not_reached] == failed[:MAX_CALLS_IN_RESULT] and back.reached == []
    assert back.to_xcom() == value  # a listed result is listed the same again


def test_the_result_stays_under_one_megabyte_with_the_longest_ids_and_a_thousand_skipped_rows() -> None:
    result, _ = hundred_thousand_calls(lambda n: f"{n:064d}")  # Fuse call ids are at most 64 characters
    skipped = tuple(
        RowError(n, "phone_number", "Invalid phone_number: +1617***12. " + "x" * 150) for n in range(5000)
    )
    value = CampaignResult(result.rows, result.calls, skipped, unknown_statuses=("ringing",)).to_xcom()
    assert len(value["calls"]) == MAX_CALLS_IN_RESULT and len(value["skipped"]) == MAX_SKIPPED_IN_RESULT
    assert len(json.dumps(value)) < 1_000_000


def test_up_to_the_cap_every_call_is_listed_as_before() -> None:
    result, _ = hundred_thousand_calls()
    some = CampaignResult(10, result.calls[:MAX_CALLS_IN_RESULT])
    value = some.to_xcom()
    assert value["truncated"] is False and len(value["calls"]) == value["calls_count"] == MAX_CALLS_IN_RESULT
    assert CampaignResult.from_xcom(value) == some

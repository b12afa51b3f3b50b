"""Issue 12, item 1: a variable cannot redirect a call.

A row variable (or a CSV column) named ``destination`` used to become a second ``destination``
column of the bulk CSV, and Fuse dialled *its* value: a number that skipped validation,
de-duplication, calling hours and masking. Every name of a field of the queue or bulk request (and
the variables field, the default and the connection's) is refused, in any case and after trimming,
before any request: requests-mock records every request and none may be sent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests_mock as rm

from airflow_provider_fuse import resume
from airflow_provider_fuse.exceptions import FuseInvalidRowsError, FuseValidationError
from airflow_provider_fuse.hooks.fuse import FuseHook
from airflow_provider_fuse.models import CallRequest
from airflow_provider_fuse.notifications.fuse import FuseCallNotifier
from airflow_provider_fuse.operators.fuse import QueueCallsOperator
from tests.conftest import DEVELOPER_KEY, FUSE_URL, LOGIN
from tests.support import FakeStore, context, logged, status_body

CALLEE = "+16175550123"
OTHER = "+19005550199"  # the number an attacker would have Fuse dial instead
RESERVED = [
    "destination",
    "phone_number",
    "start_timestamp",
    "end_timestamp",
    "max_attempts",
    "reattempt_wait",
    "result_url",
    "is_pci",
    "csv",
    "call_parameters",  # the variables field (default)
]
SPELLINGS = ["Destination", "DESTINATION", "Phone_Number", "IS_PCI", "Call_Parameters"]


def any_request(m: rm.Mocker) -> None:
    m.register_uri(
        rm.ANY, re.compile(".*"), json={"call_id": "1", "call_ids": ["1"], **status_body("completed")}
    )


@pytest.mark.parametrize("name", RESERVED + SPELLINGS)
def test_a_call_request_refuses_a_variable_named_like_a_request_field(name: str) -> None:
    with pytest.raises(FuseValidationError) as info:
        CallRequest(CALLEE, variables={name: OTHER})
    assert info.value.field == "variables" and name in str(info.value)
    assert OTHER not in str(info.value)


@pytest.mark.parametrize("name", ["destination", "Destination", "csv", "call_parameters"])
def test_a_campaign_row_cannot_redirect_its_call(fuse_conn: dict[str, str], name: str) -> None:
    rows = [
        {"phone_number": "+16175550101"},
        {"phone_number": CALLEE, "variables": {"first": "Ann", name: OTHER}},
    ]
    with rm.Mocker() as m:
        any_request(m)
        with pytest.raises(FuseInvalidRowsError) as info:
            QueueCallsOperator(task_id="c", application_id=1, deployment_id=2, calls=rows).execute(context())
        assert m.call_count == 0
    (error,) = info.value.errors
    assert (error.row, error.field) == (2, "variables") and name in error.message


def test_skip_invalid_skips_the_row_instead_of_dialling_its_variable(fuse_conn: dict[str, str]) -> None:
    rows = [
        {"phone_number": "+16175550101"},
        {"phone_number": CALLEE, "variables": {"destination": OTHER}},
    ]
    with rm.Mocker() as m:
        m.post(f"{FUSE_URL}/apps/1/2/bulk_queue", json={"call_ids": ["1"]})
        result = QueueCallsOperator(
            task_id="c",
            application_id=1,
            deployment_id=2,
            calls=rows,
            skip_invalid=True,
            wait_for_completion=False,
        ).execute(context())
        (upload,) = m.request_history
    assert b"destination" in upload.body and OTHER.encode() not in upload.body
    assert upload.body.count(b"destination") == 1, "one destination column: the checked number's"
    assert result["skipped"][0][:2] == [2, "variables"]


@pytest.mark.parametrize("header", ["destination", " Destination ", "PHONE_NUMBER", "csv", "is_pci"])
def test_a_csv_column_cannot_redirect_a_campaign(
    fuse_conn: dict[str, str], tmp_path: Path, header: str
) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(f"phone_number,name,{header}\n{CALLEE},Ann,{OTHER}\n", encoding="utf-8")
    with rm.Mocker() as m:
        any_request(m)
        with pytest.raises(FuseValidationError) as info:
            QueueCallsOperator(
                task_id="c", application_id=1, deployment_id=2, calls=str(path), wait_for_completion=False
            ).execute(context())
        assert m.call_count == 0
    assert "variables" in str(info.value) and header.strip() in str(info.value)
    assert OTHER not in str(info.value)


def configured_variables_field(monkeypatch: pytest.MonkeyPatch, field: str) -> None:
    conn = {"conn_type": "fuse", "host": FUSE_URL, "login": LOGIN, "password": DEVELOPER_KEY}
    conn["extra"] = json.dumps({"variables_field": field})
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json.dumps(conn))


def test_a_variable_named_like_the_configured_variables_field_is_refused_before_queueing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The variables field is the connection's: a variable of its name would overwrite the others."""
    configured_variables_field(monkeypatch, "app_vars")
    request = CallRequest(CALLEE, variables={"App_Vars": '{"x": 1}', "name": "Ann"})
    with rm.Mocker() as m:
        any_request(m)
        with pytest.raises(FuseValidationError) as info:
            FuseHook(backoff=0).queue_call(1, 2, request)
        assert m.call_count == 0
    assert info.value.field == "variables" and "App_Vars" in str(info.value)


def test_a_campaign_row_named_like_the_configured_variables_field_is_refused_before_any_upload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configured_variables_field(monkeypatch, "app_vars")
    rows = [{"phone_number": f"+1617555{n:04d}", "variables": {"n": n}} for n in range(100, 110)]
    rows[7]["variables"] = {"APP_VARS": "x"}  # in the last chunk: the check runs before the first
    with rm.Mocker() as m:
        any_request(m)
        with pytest.raises(FuseInvalidRowsError) as info:
            QueueCallsOperator(
                task_id="c", application_id=1, deployment_id=2, calls=rows, chunk_size=3
            ).execute(context(FakeStore()))
        assert m.call_count == 0
    assert [(e.row, e.field) for e in info.value.errors] == [(8, "variables")]


def test_the_notifier_places_no_call_for_a_redirecting_variable(
    fuse_conn: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(resume, "_process_memory", {})
    notifier = FuseCallNotifier(
        application_id=1, deployment_id=2, phone_number=CALLEE, variables={"destination": OTHER}
    )
    ti: Any = type("TI", (), {"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1, "try_number": 1})
    with rm.Mocker() as m:
        any_request(m)
        notifier({"ti": ti})  # a notifier never raises: it logs why no call was placed
        assert m.call_count == 0
    text = logged(capsys, caplog)
    assert "placed NO call" in text and "variables" in text and OTHER not in text

"""The connection extra ``variables_format``: how a single call's variables travel, and its checks."""

from __future__ import annotations

import json
from types import SimpleNamespace
from urllib.parse import parse_qsl

import pytest

from airflow_provider_fuse import protocol
from airflow_provider_fuse.connection import FuseSettings
from airflow_provider_fuse.exceptions import FuseConnectionSettingError, FuseValidationError
from airflow_provider_fuse.models import CallRequest

NUMBER = "+16175551234"
VARIABLES = {"name": "Ann Lee", "when": "Tue 9:00 & later", "count": 3, "vip": True}
AS_TEXT = {"name": "Ann Lee", "when": "Tue 9:00 & later", "count": "3", "vip": "true"}


def connection(**extra: object) -> SimpleNamespace:
    return SimpleNamespace(
        conn_id="fuse_default",
        host=None,
        port=None,
        schema=None,
        login="ops@example.com",
        password="key",
        extra_dejson=extra,
    )


def test_json_is_the_default_and_keeps_todays_single_field() -> None:
    form = CallRequest(NUMBER, variables=VARIABLES).to_form()
    assert json.loads(form["call_parameters"]) == VARIABLES
    assert FuseSettings.from_connection(connection()).variables_format == "json"


def test_fields_sends_each_variable_as_its_own_form_field() -> None:
    form = CallRequest(NUMBER, variables=VARIABLES).to_form("call_parameters", "fields")
    assert {name: form[name] for name in VARIABLES} == AS_TEXT
    assert "call_parameters" not in form and form["phone_number"] == f"tel:{NUMBER}"


def test_bracketed_sends_a_php_style_form_array_under_the_variables_field() -> None:
    form = CallRequest(NUMBER, variables=VARIABLES).to_form("metadata", "bracketed")
    assert {name: value for name, value in form.items() if name.startswith("metadata[")} == {
        f"metadata[{name}]": value for name, value in AS_TEXT.items()
    }


def test_query_sends_one_url_encoded_field() -> None:
    form = CallRequest(NUMBER, variables=VARIABLES).to_form("call_parameters", "query")
    assert "&later" not in form["call_parameters"]  # the '&' inside a value is encoded
    assert dict(parse_qsl(form["call_parameters"])) == AS_TEXT


@pytest.mark.parametrize("variables_format", protocol.VARIABLES_FORMATS)
def test_every_format_reads_back_what_it_wrote(variables_format: str) -> None:
    form = CallRequest(NUMBER, variables=VARIABLES).to_form("vars", variables_format)
    read = protocol.parse_variables_form(form, variables_format, "vars")
    expected = VARIABLES if variables_format == "json" else AS_TEXT
    assert read == expected


@pytest.mark.parametrize("variables_format", protocol.VARIABLES_FORMATS)
def test_no_variables_sends_no_variables_field(variables_format: str) -> None:
    form = CallRequest(NUMBER).to_form("call_parameters", variables_format)
    assert set(form) == {"phone_number"}


def test_query_over_255_characters_is_refused_naming_variables_before_any_request() -> None:
    long = CallRequest(NUMBER, variables={"note": "x" * 300})
    with pytest.raises(FuseValidationError, match="255") as caught:
        long.to_form("call_parameters", "query")
    assert caught.value.field == "variables"
    assert "xxxx" not in str(caught.value)  # the value itself is not echoed
    exactly = CallRequest(NUMBER, variables={"n": "y" * (255 - len("n="))})
    assert len(exactly.to_form("call_parameters", "query")["call_parameters"]) == 255


def test_the_query_limit_does_not_apply_to_the_other_formats() -> None:
    for variables_format in ("json", "fields", "bracketed"):
        CallRequest(NUMBER, variables={"note": "x" * 300}).to_form("call_parameters", variables_format)


@pytest.mark.parametrize("name", ["phone_number", "Destination", "max_attempts", "call_parameters"])
def test_in_fields_format_a_variable_named_like_a_request_field_is_refused(name: str) -> None:
    request = CallRequest(NUMBER, variables={"ok": "1"})
    request.variables = {name: "+19995550000"}  # as if it slipped past construction
    with pytest.raises(FuseValidationError, match="Rename the variable") as caught:
        request.to_form("call_parameters", "fields")
    assert caught.value.field == "variables"


@pytest.mark.parametrize(
    ("given", "read"), [("fields", "fields"), (" Query ", "query"), ("", "json"), (None, "json")]
)
def test_the_connection_extra_is_read_in_any_case(given: str | None, read: str) -> None:
    assert FuseSettings.from_connection(connection(variables_format=given)).variables_format == read


def test_an_unknown_format_is_refused_naming_the_extra_and_the_choices() -> None:
    with pytest.raises(FuseConnectionSettingError, match="json, fields, bracketed, query") as caught:
        FuseSettings.from_connection(connection(variables_format="xml"))
    assert caught.value.field == "variables_format"


def test_the_operator_refuses_a_long_query_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    import requests_mock as rm

    from airflow_provider_fuse.operators.fuse import QueueCallOperator
    from tests.conftest import DEVELOPER_KEY, FUSE_URL, LOGIN
    from tests.support import FakeStore, context

    conn = {"conn_type": "fuse", "host": FUSE_URL, "login": LOGIN, "password": DEVELOPER_KEY}
    conn["extra"] = json.dumps({"variables_format": "query"})
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json.dumps(conn))
    store = FakeStore()
    operator = QueueCallOperator(
        task_id="call", application_id=1, deployment_id=2, phone_number=NUMBER, variables={"note": "x" * 300}
    )
    with rm.Mocker() as m, pytest.raises(FuseValidationError, match="variables"):
        operator.execute(context(store))  # type: ignore[arg-type]
    assert m.call_count == 0 and store.data == {}  # nothing sent, nothing remembered

"""Issue 12, items 4 and 14 (connection part): a careless or hostile connection is refused when read.

Every extra is finite and within the bounds the README's connection table gives; a bad one raises
FuseValidationError naming it before any request (requests-mock / aioresponses catch everything).
A host written with ``user:key@`` is refused, so the key shows nowhere: not in the error, the
connection test's message or the extra link.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests_mock as rm
from aioresponses import aioresponses
from airflow.models.taskinstancekey import TaskInstanceKey
from airflow.sdk.execution_time.xcom import XCom

from airflow_provider_fuse.exceptions import FuseValidationError
from airflow_provider_fuse.hooks.fuse import FuseHook
from airflow_provider_fuse.links import FuseCallLink
from airflow_provider_fuse.models import CallRequest
from airflow_provider_fuse.sensors.fuse import FuseCallSensor

KEY = "dk-SECRET-4242"
BAD_EXTRAS = [
    ("request_timeout", "inf"),  # accepted before: the POST went out, the read raised OverflowError
    ("request_timeout", "nan"),
    ("request_timeout", float("inf")),
    ("request_timeout", -1),
    ("request_timeout", 0),
    ("request_timeout", 10**9),
    ("request_timeout", "30s"),
    ("request_timeout", True),
    ("connect_timeout", "inf"),
    ("connect_timeout", "1e999"),
    ("connect_timeout", 86_400),
    ("retry_limit", -1),
    ("retry_limit", 2.5),
    ("retry_limit", 10**6),
    ("retry_limit", "nan"),
    ("default_region", "United States"),
    ("variables_field", "phone_number"),  # would overwrite the destination with the variables
    ("variables_field", "Destination"),
    ("variables_field", "a\r\nb"),
]


def with_extra(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> None:
    conn = {"conn_type": "fuse", "host": "https://fuse.test/api", "login": "ops@example.com", "password": KEY}
    conn["extra"] = json.dumps(extra)
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json.dumps(conn))


@pytest.mark.parametrize(("name", "value"), BAD_EXTRAS)
def test_a_bad_extra_is_refused_by_name_before_any_request(
    monkeypatch: pytest.MonkeyPatch, name: str, value: Any
) -> None:
    with_extra(monkeypatch, **{name: value})
    with rm.Mocker() as m:
        m.register_uri(rm.ANY, re.compile(".*"), json={"call_id": "1"})
        with pytest.raises(FuseValidationError) as info:
            FuseHook(backoff=0).queue_call(1, 2, CallRequest("+16175550123"))
        assert m.call_count == 0
    assert info.value.field == name and name in str(info.value)


@pytest.mark.parametrize(("name", "value"), BAD_EXTRAS[:3])
async def test_a_bad_extra_is_refused_by_the_async_path_too(
    monkeypatch: pytest.MonkeyPatch, name: str, value: Any
) -> None:
    with_extra(monkeypatch, **{name: value})
    with aioresponses() as m:
        m.get(re.compile(".*"), payload={"call_details": {"status": "completed"}}, repeat=True)
        with pytest.raises(FuseValidationError, match=name):
            await FuseHook(backoff=0).aget_call("1")
        assert not m.requests


KEYED_HOSTS = [
    f"https://ops:{KEY}@fuse.example.com/api",
    f"ops:{KEY}@fuse.example.com",
    f"https://{KEY}@fuse.test",
]


@pytest.mark.parametrize("host", KEYED_HOSTS)
def test_a_host_carrying_the_key_is_refused_and_never_shown(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    conn = {"conn_type": "fuse", "host": host, "login": "ops@example.com", "password": KEY}
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json.dumps(conn))
    monkeypatch.setattr(XCom, "get_value", lambda **kwargs: "4242")
    with rm.Mocker() as m:
        m.register_uri(rm.ANY, re.compile(".*"), status_code=404, json={"error": "no such call"})
        with pytest.raises(FuseValidationError, match="host") as info:
            _ = FuseHook().settings
        ok, message = FuseHook().test_connection()
        link = FuseCallLink().get_link(
            FuseCallSensor(task_id="t", call_id="4242"), ti_key=TaskInstanceKey("d", "t", "r")
        )
        assert m.call_count == 0
    assert KEY not in str(info.value)
    assert ok is False and KEY not in message
    assert KEY not in link and "fuse.example.com" not in link and "fuse.test" not in link
    assert link.endswith("fuse/tasks/d/r/t/-1")  # Airflow's own page: the link never reads the host


def test_an_extra_link_never_carries_an_unsafe_call_id(
    fuse_conn: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The link is the task's page in Airflow: a call id, ``..`` included, never goes into it."""
    monkeypatch.setattr(XCom, "get_value", lambda **kwargs: None)
    sensor = FuseCallSensor(task_id="t", call_id="../apps/1/2/cancel")
    link = FuseCallLink().get_link(sensor, ti_key=TaskInstanceKey("d", "t", "r"))
    assert ".." not in link and "cancel" not in link

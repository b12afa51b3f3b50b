"""Fuse's undocumented answers: queue answers without an id, bulk answers without ids, XML or HTML."""

from __future__ import annotations

import pytest
import requests_mock as rm
from aioresponses import aioresponses

from airflow_provider_fuse.exceptions import FuseAuthError, FuseResponseError
from airflow_provider_fuse.hooks.fuse import FuseHook
from airflow_provider_fuse.models import CallRequest
from tests.conftest import FUSE_URL

QUEUE_URL = f"{FUSE_URL}/apps/11/22/queue"
BULK_URL = f"{FUSE_URL}/apps/11/22/bulk_queue"
STATUS_URL = f"{FUSE_URL}/outbound/901"
XML = '<?xml version="1.0"?><response><call_id>901</call_id></response>'
CALLS = [CallRequest("+16175551234"), CallRequest("+16175550000")]


@pytest.fixture
def hook(fuse_conn: dict[str, str]) -> FuseHook:
    return FuseHook(backoff=0)


# --- a queue answer without call_id nor Link -------------------------------------------------------


def test_a_2xx_queue_answer_without_id_or_link_says_probably_queued_with_the_masked_body(
    hook: FuseHook,
) -> None:
    with rm.Mocker() as m, pytest.raises(FuseResponseError) as caught:
        m.post(QUEUE_URL, json={"success": True, "to": "+16175551234"})
        hook.queue_call(11, 22, CallRequest("+16175551234"))
    message = str(caught.value)
    assert "probably queued" in message and "no call_id" in message and "Link" in message
    assert '"success": true' in message  # the body, so that a person sees what Fuse said
    assert "6175551234" not in message and "+16***234" in message  # masked
    assert caught.value.call_may_be_queued is True


def test_an_empty_2xx_queue_answer_says_so(hook: FuseHook) -> None:
    with rm.Mocker() as m, pytest.raises(FuseResponseError, match="an empty body"):
        m.post(QUEUE_URL, status_code=202, text="")
        hook.queue_call(11, 22, CallRequest("+16175551234"))


# --- XML and HTML answers --------------------------------------------------------------------------


def test_an_xml_queue_answer_names_its_content_type_and_says_probably_queued(hook: FuseHook) -> None:
    with rm.Mocker() as m, pytest.raises(FuseResponseError) as caught:
        m.post(
            QUEUE_URL, text=XML, headers={"Content-Type": "application/xml; charset=utf-8", "Link": "<x/901>"}
        )
        hook.queue_call(11, 22, CallRequest("+16175551234"))
    assert "application/xml" in str(caught.value) and "probably queued" in str(caught.value)
    assert caught.value.call_may_be_queued is True
    assert m.request_history[0].headers["Accept"] == "application/json"


def test_an_html_status_answer_names_its_content_type(hook: FuseHook) -> None:
    with rm.Mocker() as m, pytest.raises(FuseResponseError, match="text/html"):
        m.get(STATUS_URL, text="<html>Sign in</html>", headers={"Content-Type": "text/html"})
        hook.get_call(901)


async def test_an_xml_status_answer_is_refused_on_the_async_path_too(fuse_conn: dict[str, str]) -> None:
    with aioresponses() as mocked, pytest.raises(FuseResponseError, match="application/xml"):
        mocked.get(STATUS_URL, body=XML, headers={"Content-Type": "application/xml"})
        await FuseHook(backoff=0).aget_call(901)


def test_an_xml_error_answer_keeps_its_status_class(hook: FuseHook) -> None:
    with rm.Mocker() as m, pytest.raises(FuseAuthError, match="HTTP 401"):
        m.get(
            STATUS_URL, status_code=401, text="<error>no</error>", headers={"Content-Type": "application/xml"}
        )
        hook.get_call(901)


def test_an_xml_bulk_answer_names_its_content_type(hook: FuseHook) -> None:
    with rm.Mocker() as m, pytest.raises(FuseResponseError, match=r"application/xml.*probably queued"):
        m.post(BULK_URL, text=XML, headers={"Content-Type": "application/xml"})
        hook.queue_calls(11, 22, CALLS)


# --- bulk answers without ids ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        {"json": {"success": True}},
        {"status_code": 202, "text": ""},
        {"status_code": 200, "json": {"queued": 2}},
    ],
    ids=["success-only", "empty-202", "other-shape"],
)
def test_a_2xx_bulk_answer_without_ids_means_queued_untracked(
    hook: FuseHook, answer: dict[str, object]
) -> None:
    with rm.Mocker() as m:
        m.post(BULK_URL, **answer)
        assert hook.queue_calls(11, 22, CALLS) is None


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ({"json": {"success": False}}, "says it failed"),
        ({"json": {"error": "bad row 2"}}, "says it failed"),
        ({"text": "OK", "headers": {"Content-Type": "text/plain"}}, "not JSON"),
        ({"json": {"call_ids": [1]}}, "answered 1 call ids"),
    ],
)
def test_a_2xx_bulk_answer_that_says_otherwise_is_an_error(
    hook: FuseHook, answer: dict[str, object], says: str
) -> None:
    with rm.Mocker() as m, pytest.raises(FuseResponseError, match=says) as caught:
        m.post(BULK_URL, **answer)
        hook.queue_calls(11, 22, CALLS)
    assert caught.value.call_may_be_queued is True  # a retry refuses to upload again

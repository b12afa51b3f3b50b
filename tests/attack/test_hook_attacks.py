"""Issue 12, items 11 (hook part) and 12: what reaches a URL path, what escapes, what leaks.

* A call id is checked against a safe pattern before it becomes part of a URL path: ``..`` used to
  turn ``GET /api/outbound/..`` into ``GET /api/``; an id Fuse answers is checked the same way.
* Whatever Fuse answers ends as a value or a FuseError, never a bare ValueError and the like: a
  field Python cannot read (a 5,000-digit number) is None.
* Fuse's own error text, copied into errors and trigger events, has its digit runs masked.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests_mock as rm
from aioresponses import aioresponses

from airflow_provider_fuse.exceptions import FuseError, FuseResponseError, FuseValidationError
from airflow_provider_fuse.hooks.fuse import FuseHook
from airflow_provider_fuse.models import CallRequest
from airflow_provider_fuse.triggers.fuse import FuseCallTrigger
from tests.conftest import FUSE_URL

UNSAFE_CALL_IDS = [
    "..",
    ".",
    "../5",
    "1/../../apps/1/2/cancel",
    "%2e%2e",
    "7?x=1",
    "7#",
    "",
    " 7",
    "7\n",
    "\u0667",
]
NUMBER_TEXT = "destination 16175550123 (card 4111111111111111, exp 12/29)"


@pytest.mark.parametrize("call_id", UNSAFE_CALL_IDS)
def test_an_unsafe_call_id_never_reaches_a_url(fuse_conn: dict[str, str], call_id: str) -> None:
    with rm.Mocker() as m:
        m.register_uri(rm.ANY, re.compile(".*"), json={"call_details": {"status": "completed"}})
        with pytest.raises(FuseValidationError, match="call_id"):
            FuseHook(backoff=0).get_call(call_id)
        assert m.call_count == 0


@pytest.mark.parametrize("call_id", UNSAFE_CALL_IDS[:4])
async def test_an_unsafe_call_id_never_reaches_a_url_in_the_async_path(
    fuse_conn: dict[str, str], call_id: str
) -> None:
    with aioresponses() as m:
        m.get(re.compile(".*"), payload={"call_details": {"status": "completed"}}, repeat=True)
        with pytest.raises(FuseValidationError, match="call_id"):
            await FuseHook(backoff=0).aget_call(call_id)
        assert not m.requests


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ({"call_id": "../../apps/1/2/cancel"}, {}),
        ({}, {"Link": f"<{FUSE_URL}/outbound/..>"}),
        ({"call_id": "7 8"}, {}),
    ],
)
def test_an_unsafe_call_id_in_fuses_answer_is_not_used(
    fuse_conn: dict[str, str], body: dict[str, Any], headers: dict[str, str]
) -> None:
    with rm.Mocker() as m, pytest.raises(FuseResponseError, match="probably queued") as info:
        m.post(f"{FUSE_URL}/apps/1/2/queue", json=body, headers=headers)
        FuseHook(backoff=0).queue_call(1, 2, CallRequest("+16175550123"))
    assert info.value.call_may_be_queued


HUGE = "9" * 5000
ESCAPING_STATUS_BODIES = [
    {"call_details": {"status": "queued", "attempts": HUGE}},
    {"call_details": {"status": "queued", "duration": HUGE}},
    {"call_details": {"status": "queued", "queued_timestamp": HUGE}},
    {"call_details": {"status": "queued", "events": [{"event": "dialing", "timestamp": HUGE}]}},
]


@pytest.mark.parametrize("body", ESCAPING_STATUS_BODIES)
def test_an_unreadable_status_field_ends_as_a_value(fuse_conn: dict[str, str], body: dict[str, Any]) -> None:
    """The field Python cannot read is None; the call is still tracked (not a bare ValueError)."""
    with rm.Mocker() as m:
        m.get(f"{FUSE_URL}/outbound/7", json=body)
        details = FuseHook(backoff=0).get_call("7")
    assert (details.call_id, details.status, details.attempts, details.duration) == (
        "7",
        "queued",
        None,
        None,
    )
    assert details.queued_at is None and not details.events


@pytest.mark.parametrize("body", ESCAPING_STATUS_BODIES[:1])
async def test_an_unreadable_status_field_ends_as_a_value_in_the_async_path(
    fuse_conn: dict[str, str], body: dict[str, Any]
) -> None:
    with aioresponses() as m:
        m.get(f"{FUSE_URL}/outbound/7", payload=body)
        details = await FuseHook(backoff=0).aget_call("7")
    assert (details.status, details.attempts) == ("queued", None)


@pytest.mark.parametrize("status", [400, 404, 409, 500])
def test_fuses_error_text_has_its_numbers_masked(fuse_conn: dict[str, str], status: int) -> None:
    with rm.Mocker() as m, pytest.raises(FuseError) as info:
        m.post(f"{FUSE_URL}/apps/1/2/queue", status_code=status, json={"error": NUMBER_TEXT})
        FuseHook(backoff=0).queue_call(1, 2, CallRequest("+16175550123"))
    for shown in (str(info.value), info.value.fuse_message or ""):
        assert "16175550123" not in shown and "4111111111111111" not in shown
        assert "destination" in shown  # the words stay: only the digits are masked


async def test_fuses_error_text_is_masked_in_trigger_events(fuse_conn: dict[str, str]) -> None:
    with aioresponses() as m:
        m.get(f"{FUSE_URL}/outbound/7", status=400, payload={"error": NUMBER_TEXT})
        events = [event async for event in FuseCallTrigger("7", poll_interval=1).run()]
    (event,) = events
    assert "16175550123" not in str(event.payload) and "4111111111111111" not in str(event.payload)

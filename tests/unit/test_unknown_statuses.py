"""Statuses this provider does not know: kept, logged once per value, listed, and given up on in time."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import requests_mock as rm
from aioresponses import aioresponses

from airflow_provider_fuse import resume, waiting
from airflow_provider_fuse.campaign import CampaignResult
from airflow_provider_fuse.exceptions import FuseCallFailed, FuseWaitTimeout
from airflow_provider_fuse.models import CallDetails, CallRequest, CallStatus
from airflow_provider_fuse.operators.fuse import QueueCallOperator
from airflow_provider_fuse.triggers.fuse import FuseCallTrigger
from tests.conftest import FUSE_URL, HANG, within
from tests.support import FakeStore, context

LOG = logging.getLogger("tests.unknown")
STATUS_URL = f"{FUSE_URL}/outbound/5"


def details(status: str, call_id: str = "5") -> CallDetails:
    return CallDetails.from_api({"call_details": {"status": status, "phone_number": "'6175551234'"}}, call_id)


def body(status: str) -> dict[str, Any]:
    return {"call_details": {"status": status, "attempts": "1", "phone_number": "'6175551234'", "events": []}}


class ScriptedHook:
    """A hook whose status requests answer the given statuses in turn, the last one forever."""

    def __init__(self, *statuses: str):
        self.statuses = list(statuses)

    def get_call(self, call_id: str, *, deadline: float | None = None) -> CallDetails:
        return details(self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0], call_id)


class Task:
    log = LOG


def test_known_statuses_are_the_documented_and_assumed_ones() -> None:
    assert all(CallStatus.is_known(s) for s in ("queued", "dialing", "connected", "completed", "Failed"))
    assert not CallStatus.is_known("ringing") and not CallStatus.is_known("unknown")


def test_an_unknown_status_is_kept_and_logged_once_per_value(caplog: pytest.LogCaptureFixture) -> None:
    unknown = waiting.UnknownStatuses(None, LOG)
    with caplog.at_level(logging.WARNING):
        for status in ("ringing", "ringing", "queued", "on_hold", "ringing"):
            found = unknown.check("5", details(status), time.time())
            assert (found is None) == (status == "queued")
            assert found is None or found.status == status  # kept as-is
    assert unknown.seen == ["ringing", "on_hold"]
    assert caplog.text.count("'ringing'") == 1 and caplog.text.count("'on_hold'") == 1


def test_a_status_never_read_is_not_flagged() -> None:
    assert waiting.UnknownStatuses(0.0, LOG).check("5", details(""), time.time()) is None


def test_a_worker_wait_keeps_waiting_through_unknown_statuses_until_the_call_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hook = ScriptedHook("ringing", "ringing", "ringing", "completed")
    with caplog.at_level(logging.WARNING):
        result = waiting.wait_in_worker(Task(), hook, "5", 0.0, None, time.time() + 3600)  # type: ignore[arg-type]
    assert result["status"] == "completed"
    assert caplog.text.count("does not know") == 1


def test_a_worker_wait_ends_unknown_past_the_window_instead_of_running_to_the_timeout() -> None:
    hook = ScriptedHook("ringing")
    with pytest.raises(FuseCallFailed, match="ended 'unknown'") as caught:
        waiting.wait_in_worker(Task(), hook, "5", 0.0, time.time() + HANG, time.time() - 1)  # type: ignore[arg-type]
    assert caught.value.status == "unknown"


def test_without_a_window_an_unknown_status_runs_to_the_deadline() -> None:
    with pytest.raises(FuseWaitTimeout, match="'ringing'"):
        waiting.wait_in_worker(Task(), ScriptedHook("ringing"), "5", 0.0, time.time() + 0.5)  # type: ignore[arg-type]


def test_the_window_is_the_calls_plus_the_documented_grace() -> None:
    now = 1_800_000_000.0
    request = CallRequest("+16175551234", end_timestamp=int(now) + 600, now=_utc(now))
    assert waiting.give_up_unknown_at([request], now) == now + 600 + resume.LAST_ATTEMPT_SECONDS


def test_a_campaign_poller_ends_a_call_unknown_past_the_window_and_lists_the_statuses() -> None:
    poller = waiting.CallsPoller(["1", "2"], poll_interval=1.0, now=0.0, log=LOG, give_up_unknown=100.0)
    poller.record("1", details("ringing", "1"), 50.0)
    poller.record("2", details("completed", "2"), 50.0)
    assert poller.pending == 1
    poller.record("1", details("ringing", "1"), 100.0)
    event = poller.event()
    assert poller.pending == 0 and event["status"] == "done"
    assert [row[1] for row in event["calls"]] == ["unknown", "completed"]
    assert event["unknown_statuses"] == ["ringing"]
    queued = {"rows": 2, "call_ids": ["1", "2"], "call_rows": ["1", "2"], "skipped": [], "skipped_count": 0}
    result, error = waiting.campaign_outcome(event, queued, 0.0)
    assert error is None and result.to_xcom()["unknown_statuses"] == ["ringing"]
    assert CampaignResult.from_xcom(result.to_xcom()).unknown_statuses == ("ringing",)
    assert [call.row for call in result.not_reached] == [1]


@pytest.mark.usefixtures("fuse_conn")
async def test_the_trigger_ends_unknown_past_the_window() -> None:
    trigger = FuseCallTrigger("5", poll_interval=0, give_up_unknown=time.time() - 1)
    assert trigger.serialize()[1]["give_up_unknown"] == trigger.give_up_unknown
    with aioresponses() as m:
        m.get(STATUS_URL, payload=body("ringing"), repeat=True)
        events = await within(HANG, _events(trigger), "a trigger past its window")
    assert events[0]["status"] == "unknown" and "'ringing'" in events[0]["message"]
    with pytest.raises(FuseCallFailed, match="'unknown'"):
        waiting.outcome_from_event(events[0])


@pytest.mark.usefixtures("fuse_conn", "no_polling_limits")
def test_the_operator_gives_up_on_an_unknown_status_after_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resume, "LAST_ATTEMPT_SECONDS", 0.0)  # the grace, shortened for the test
    operator = QueueCallOperator(
        task_id="call",
        application_id=11,
        deployment_id=22,
        phone_number="+16175551234",
        end_timestamp=int(time.time()) + 2,
        poll_interval=0.05,
        timeout=HANG,
    )
    with rm.Mocker() as m:
        m.post(f"{FUSE_URL}/apps/11/22/queue", json={"call_id": "5"})
        m.get(STATUS_URL, json=body("ringing"))
        with pytest.raises(FuseCallFailed, match="ended 'unknown'"):
            operator.execute(context(FakeStore()))  # type: ignore[arg-type]


async def _events(trigger: FuseCallTrigger) -> list[dict[str, Any]]:
    return [event.payload async for event in trigger.run()]


def _utc(seconds: float) -> Any:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, timezone.utc)

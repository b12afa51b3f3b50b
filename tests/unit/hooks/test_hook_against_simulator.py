"""FuseHook end to end against the live FuseSimulator: real HTTP, real multipart, real faults."""

from __future__ import annotations

import json

import pytest

from airflow_provider_fuse.exceptions import FuseAuthError, FuseConnectionError
from airflow_provider_fuse.hooks.fuse import FuseHook
from airflow_provider_fuse.models import CallRequest
from airflow_provider_fuse.testing import FuseSimulator
from airflow_provider_fuse.triggers.fuse import FuseCallTrigger
from tests.conftest import HANG, within

NUMBER = "+16175550142"
#: Latin-1 would encode the é differently and cannot encode the € or the Cyrillic at all.
UNICODE_KEY = "clé-€-ключ"


def test_queue_then_status_until_terminal(sim: FuseSimulator) -> None:
    hook = FuseHook()
    call_id = hook.queue_call(
        11, 22, CallRequest(NUMBER, variables={"name": "Ann"}, max_attempts=2, reattempt_wait=60)
    )
    (queued,) = sim.requests("queue")
    assert queued.form["phone_number"] == f"tel:{NUMBER}" and json.loads(queued.form["call_parameters"]) == {
        "name": "Ann"
    }
    assert not hook.get_call(call_id).is_terminal
    sim.advance(600)
    details = hook.get_call(call_id)
    assert details.status == "completed" and details.succeeded
    assert [event.name for event in details.events][:2] == ["queued", "dialing"]


def test_cancel_moves_pending_calls_to_canceled(sim: FuseSimulator) -> None:
    hook = FuseHook()
    later = CallRequest(NUMBER, start_timestamp=int(sim.now()) + 3600)
    call_id = hook.queue_call(11, 22, later)
    hook.cancel_pending_calls(11, 22)
    assert hook.get_call(call_id).status == "canceled"


def test_wrong_credentials_are_an_auth_error(sim: FuseSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", sim.connection_uri.replace("dev-key", "wrong-key"))
    with pytest.raises(FuseAuthError, match="HTTP 401"):
        FuseHook().queue_call(11, 22, CallRequest(NUMBER))
    assert FuseHook().test_connection()[0] is False
    assert sim.requests("queue")[0].status == 401


def test_a_429_storm_is_ridden_out_with_one_call_queued(sim: FuseSimulator) -> None:
    sim.faults.inject("queue", "429", count=3, retry_after=0)
    call_id = FuseHook().queue_call(11, 22, CallRequest(NUMBER))
    answered = [entry.status for entry in sim.requests("queue")]
    assert answered == [429, 429, 429, 200]
    assert [entry.call_ids for entry in sim.requests("queue") if entry.processed] == [[call_id]]


def test_a_read_timeout_on_queue_is_not_retried(sim: FuseSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = sim.connection_uri + "?request_timeout=0.3"
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", uri)
    sim.faults.inject("queue", "slow", delay=600)  # cut short when the simulator stops
    with pytest.raises(FuseConnectionError, match="may have been queued"):
        FuseHook().queue_call(11, 22, CallRequest(NUMBER))
    (only,) = sim.requests("queue")
    assert only.processed and len(only.call_ids) == 1  # Fuse did queue it: retrying would ring twice


async def test_a_non_ascii_developer_key_queues_in_the_worker_and_polls_in_the_triggerer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 13: one Basic-auth encoding (UTF-8, RFC 7617) for requests and aiohttp alike."""
    monkeypatch.setattr(FuseHook, "backoff", 0)
    with FuseSimulator(password=UNICODE_KEY) as sim:
        for name, value in sim.connection_env().items():
            monkeypatch.setenv(name, value)
        call_id = FuseHook().queue_call(11, 22, CallRequest(NUMBER))  # requests, as in a worker
        sim.advance(600)
        trigger = FuseCallTrigger(call_id, poll_interval=0.01)  # aiohttp, as in the triggerer
        events = await within(HANG, _events(trigger), "a wait against the simulator")
        answered = [entry.status for entry in sim.requests("queue") + sim.requests("status")]
    assert events[0]["status"] == "completed" and events[0]["call_id"] == call_id
    assert answered == [200, 200]


async def _events(trigger: FuseCallTrigger) -> list[dict[str, object]]:
    return [event.payload async for event in trigger.run()]

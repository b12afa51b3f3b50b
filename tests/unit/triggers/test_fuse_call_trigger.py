"""FuseCallTrigger under a real event loop, Fuse mocked with aioresponses."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import requests
from aioresponses import aioresponses

from airflow_provider_fuse.hooks import fuse as hook_module
from airflow_provider_fuse.triggers.fuse import FuseCallTrigger
from tests.conftest import FUSE_URL, HANG, within

STATUS_URL = f"{FUSE_URL}/outbound/5"


def body(status: str) -> dict[str, Any]:
    return {"call_details": {"status": status, "attempts": "1", "phone_number": "'6175551234'", "events": []}}


pytestmark = pytest.mark.usefixtures("fuse_conn")


async def events_of(trigger: FuseCallTrigger) -> list[dict[str, Any]]:
    return [event.payload async for event in trigger.run()]


def test_serialize_round_trips() -> None:
    trigger = FuseCallTrigger("5", "my_fuse", 12.5, 1_800_000_000.0)
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_fuse.triggers.fuse.FuseCallTrigger"
    rebuilt = FuseCallTrigger(**kwargs)
    assert rebuilt.serialize() == (path, kwargs)
    assert kwargs == {
        "call_id": "5",
        "fuse_conn_id": "my_fuse",
        "poll_interval": 12.5,
        "deadline": 1_800_000_000.0,
    }


@pytest.mark.parametrize("final", ["completed", "failed", "rejected", "canceled"])
async def test_polls_until_terminal_and_yields_one_small_event(final: str) -> None:
    with aioresponses() as m:
        for status in ("queued", "dialing", "connected", final):
            m.get(STATUS_URL, payload=body(status))
        events = await events_of(FuseCallTrigger("5", poll_interval=0))
    assert len(events) == 1
    event = events[0]
    assert set(event) == {"status", "call_id", "call_details", "message"}
    assert event["status"] == final and event["call_id"] == "5"
    assert event["call_details"]["phone_number"] == "61***234"


async def test_transient_errors_are_ridden_out() -> None:
    with aioresponses() as m:
        m.get(STATUS_URL, status=503, payload={"error": "busy"})
        m.get(STATUS_URL, body="{not json")
        m.get(STATUS_URL, status=429, headers={"Retry-After": "0"})
        m.get(STATUS_URL, payload=body("completed"))
        events = await events_of(FuseCallTrigger("5", poll_interval=0))
    assert events[0]["status"] == "completed"


async def test_permanent_errors_end_with_an_error_event() -> None:
    with aioresponses() as m:
        m.get(STATUS_URL, status=404, payload={"error": "call not found"})
        events = await events_of(FuseCallTrigger("5", poll_interval=0))
    assert events[0]["status"] == "error" and "call not found" in events[0]["message"]


async def test_deadline_yields_a_timeout_event_that_says_the_call_is_not_cancelled() -> None:
    # Polls an hour apart: only the deadline can end this wait before HANG runs out.
    deadline = time.time() + 2  # time for a first poll on a busy machine
    with aioresponses() as m:
        m.get(STATUS_URL, payload=body("dialing"), repeat=True)
        trigger = FuseCallTrigger("5", poll_interval=3600, deadline=deadline)
        events = await within(HANG, events_of(trigger), "a trigger whose deadline had passed")
    assert time.time() >= deadline, "the wait ended before its deadline"
    assert events[0]["status"] == "timeout" and "NOT cancelled" in events[0]["message"]
    assert time.strftime("%H:%M:%S", time.gmtime(deadline)) in events[0]["message"]
    assert events[0]["call_details"]["status"] == "dialing"


async def test_run_never_blocks_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """No blocking sleep and no sync HTTP: either would stall every other trigger of the triggerer."""

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("blocking call inside the trigger")

    monkeypatch.setattr(time, "sleep", forbidden)
    monkeypatch.setattr(requests.Session, "request", forbidden)
    with aioresponses() as m:
        m.get(STATUS_URL, status=503, payload={"error": "busy"})
        m.get(STATUS_URL, payload=body("dialing"))
        m.get(STATUS_URL, payload=body("completed"))
        events = await events_of(FuseCallTrigger("5", poll_interval=0.01))
    assert events[0]["status"] == "completed"


async def test_concurrent_triggers_share_one_session() -> None:
    seen: set[int] = set()
    original = hook_module._aget

    async def spy(session: Any, settings: Any, path: str, *rest: Any) -> Any:
        seen.add(id(session))
        return await original(session, settings, path, *rest)

    with aioresponses() as m, pytest.MonkeyPatch.context() as patch:
        patch.setattr(hook_module, "_aget", spy)
        for call_id in ("5", "6", "7"):
            m.get(f"{FUSE_URL}/outbound/{call_id}", payload=body("dialing"))
            m.get(f"{FUSE_URL}/outbound/{call_id}", payload=body("completed"))
        results = await asyncio.gather(
            *(events_of(FuseCallTrigger(call_id, poll_interval=0.01)) for call_id in ("5", "6", "7"))
        )
    assert [r[0]["status"] for r in results] == ["completed"] * 3
    assert len(seen) == 1


async def test_a_wait_reads_its_connection_once_and_polls_on_one_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 18: what a poll needs besides the request is resolved once per wait, not per poll."""
    from airflow_provider_fuse.hooks.fuse import FuseHook

    reads: list[str] = []
    opened: list[Any] = []
    read_connection, new_session = FuseHook.aget_connection, hook_module._new_session

    async def spy_read(cls: Any, conn_id: str) -> Any:
        reads.append(conn_id)
        return await read_connection(conn_id)

    def spy_open(settings: Any) -> Any:
        opened.append(settings)
        return new_session(settings)

    monkeypatch.setattr(FuseHook, "aget_connection", classmethod(spy_read))
    monkeypatch.setattr(hook_module, "_new_session", spy_open)
    with aioresponses() as m:
        for status in ("queued", "dialing", "connected", "completed"):
            m.get(STATUS_URL, payload=body(status))
        events = await events_of(FuseCallTrigger("5", poll_interval=0))
        polls = sum(len(calls) for calls in m.requests.values())
    assert events[0]["status"] == "completed" and polls == 4
    assert reads == ["fuse_default"] and len(opened) == 1

"""Issue 12, item 5(b): no sleep of a wait loop runs past the wait's deadline.

A single 429 with ``Retry-After: 25`` once ended a 3 s ``FuseCallsTrigger`` wait after 25 s, and
``max_requests_per_second=0.02`` a 2 s wait after 50 s: the pacer's sleep ignored the deadline. Every
wait loop (both triggers, the worker's loops) now passes its deadline to the hook, honours an
error's Retry-After between polls, and cuts every sleep at the deadline.

Two kinds of checks: each sleep asked for is recorded (``Sleeps``), and none may end past the
deadline; and, with real time, the wait ends well within a generous bound (12 s for a 2-3 s
deadline) that the old code overran by far. Fuse is aioresponses/requests-mock: nothing leaves.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest
import requests_mock as rm
from aioresponses import aioresponses

from airflow_provider_fuse import waiting
from airflow_provider_fuse.hooks.fuse import FuseHook
from airflow_provider_fuse.operators.fuse import QueueCallOperator
from airflow_provider_fuse.triggers.fuse import FuseCallsTrigger, FuseCallTrigger
from tests.conftest import DEVELOPER_KEY, FUSE_URL, HANG, LOGIN, within
from tests.support import context, status_body

GENEROUS = 12.0
#: Sleeps may end this much after the deadline (the loop's own bookkeeping), never a Retry-After's worth.
SLACK = 1.0


@pytest.fixture
def no_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection whose requests are not retried inside the hook: the loops see every 429."""
    conn = {"conn_type": "fuse", "host": FUSE_URL, "login": LOGIN, "password": DEVELOPER_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json.dumps({**conn, "extra": {"retry_limit": 0}}))
    monkeypatch.setattr(FuseHook, "backoff", 0)


class Sleeps:
    """Every ``asyncio.sleep`` asked for: when it would end. ``real=False`` returns at once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, real: bool = True):
        self.ends: list[tuple[float, float]] = []  # (asked at, seconds)
        original = asyncio.sleep

        async def sleep(seconds: float, *args: Any) -> Any:
            self.ends.append((time.time(), float(seconds)))
            return await original(seconds if real else 0, *args)

        monkeypatch.setattr(asyncio, "sleep", sleep)

    def past(self, deadline: float) -> list[float]:
        return [at + seconds - deadline for at, seconds in self.ends if at + seconds > deadline + SLACK]


def body(status: str) -> dict[str, Any]:
    return {"call_details": {"status": status, "attempts": "1", "phone_number": "'6175551234'", "events": []}}


async def events_of(trigger: Any) -> list[dict[str, Any]]:
    return [event.payload async for event in trigger.run()]


@pytest.mark.usefixtures("no_retries")
async def test_a_single_429_with_retry_after_25_does_not_stretch_a_3_s_campaign_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sleeps = Sleeps(monkeypatch)
    deadline = time.time() + 3
    with aioresponses() as m:
        m.get(f"{FUSE_URL}/outbound/1", status=429, headers={"Retry-After": "25"}, payload={})
        m.get(f"{FUSE_URL}/outbound/1", payload=body("dialing"), repeat=True)
        started = time.monotonic()
        trigger = FuseCallsTrigger(["1"], poll_interval=1, deadline=deadline)
        (event,) = await within(HANG, events_of(trigger), "a campaign wait after a 429")
    assert event["status"] == "timeout"
    assert time.monotonic() - started < GENEROUS
    assert sleeps.past(deadline) == []


async def test_a_low_request_rate_does_not_stretch_a_2_s_campaign_wait(
    fuse_conn: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps = Sleeps(monkeypatch)
    deadline = time.time() + 2
    with aioresponses() as m:
        for call_id in ("1", "2"):
            m.get(f"{FUSE_URL}/outbound/{call_id}", payload=body("dialing"), repeat=True)
        started = time.monotonic()
        trigger = FuseCallsTrigger(
            ["1", "2"], poll_interval=1, deadline=deadline, max_requests_per_second=0.02
        )
        (event,) = await within(HANG, events_of(trigger), "a campaign wait at 0.02 requests a second")
    assert event["status"] == "timeout"
    assert time.monotonic() - started < GENEROUS
    assert sleeps.past(deadline) == []


@pytest.mark.parametrize("kind", ["one call", "many calls"])
async def test_both_triggers_give_the_hook_their_deadline(
    fuse_conn: dict[str, str], monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """So that the hook's own retries and Retry-After waits end at the deadline too."""
    asked: list[float | None] = []
    original = FuseHook.aget_call

    async def spy(self: FuseHook, call_id: str | int, **kwargs: Any) -> Any:
        asked.append(kwargs.get("deadline"))
        return await original(self, call_id, **kwargs)

    monkeypatch.setattr(FuseHook, "aget_call", spy)
    deadline = time.time() + 60
    trigger: Any = (
        FuseCallTrigger("1", poll_interval=0.01, deadline=deadline)
        if kind == "one call"
        else FuseCallsTrigger(["1"], poll_interval=0.01, deadline=deadline, max_requests_per_second=1000)
    )
    with aioresponses() as m:
        m.get(f"{FUSE_URL}/outbound/1", payload=body("completed"))
        await within(HANG, events_of(trigger), kind)
    assert asked == [deadline]


#: (Retry-After, seconds to the deadline): without a deadline the pause is Fuse's; with one, never past it.
RETRY_AFTERS = [("2", None), ("60", 30.0)]


def check_pause(at: float, asked: float, retry_after: str, deadline: float | None) -> None:
    if deadline is None:
        assert asked == float(retry_after), f"waited {asked:.2f} s between polls; Fuse asked {retry_after} s"
    else:  # the deadline is 30 s away: far above the 0.01 s interval, far below Retry-After
        assert asked > 10 and at + asked <= deadline + SLACK, (
            f"waited {asked:.2f} s; {deadline - at:.2f} s were left"
        )


@pytest.mark.usefixtures("no_retries")
@pytest.mark.parametrize(("retry_after", "window"), RETRY_AFTERS)
async def test_the_single_call_trigger_honours_retry_after_between_polls_up_to_the_deadline(
    monkeypatch: pytest.MonkeyPatch, retry_after: str, window: float | None
) -> None:
    sleeps = Sleeps(monkeypatch, real=False)
    deadline = None if window is None else time.time() + window
    with aioresponses() as m:
        m.get(f"{FUSE_URL}/outbound/1", status=429, headers={"Retry-After": retry_after}, payload={})
        m.get(f"{FUSE_URL}/outbound/1", payload=body("completed"))
        trigger = FuseCallTrigger("1", poll_interval=0.01, deadline=deadline)
        (event,) = await within(HANG, events_of(trigger), "a wait after a 429")
    assert event["status"] == "completed"
    ((at, asked),) = sleeps.ends
    check_pause(at, asked, retry_after, deadline)


@pytest.mark.usefixtures("no_retries")
@pytest.mark.parametrize(("retry_after", "timeout"), RETRY_AFTERS)
def test_the_worker_wait_honours_retry_after_between_polls_up_to_the_deadline(
    monkeypatch: pytest.MonkeyPatch, retry_after: str, timeout: float | None
) -> None:
    asked: list[tuple[float, float]] = []
    monkeypatch.setattr(
        waiting.time, "sleep", lambda seconds: asked.append((time.time(), seconds))
    )  # not taken
    deadline = None if timeout is None else time.time() + timeout
    op = QueueCallOperator(
        task_id="call",
        application_id=11,
        deployment_id=22,
        phone_number="+16175551234",
        poll_interval=1,
        timeout=timeout,
    )
    with rm.Mocker() as m:
        m.post(f"{FUSE_URL}/apps/11/22/queue", json={"call_id": 1})
        m.get(
            f"{FUSE_URL}/outbound/1",
            [
                {"status_code": 429, "headers": {"Retry-After": retry_after}, "json": {}},
                {"json": status_body("completed")},
            ],
        )
        assert op.execute(context())["status"] == "completed"
    ((at, slept),) = asked
    check_pause(at, slept, retry_after, deadline)


def test_a_low_request_rate_does_not_stretch_a_2_s_wait_in_the_worker(fuse_conn: dict[str, str]) -> None:
    class Task:
        log = logging.getLogger("test")

    with rm.Mocker() as m:
        for call_id in ("1", "2"):
            m.get(f"{FUSE_URL}/outbound/{call_id}", json=status_body("dialing"))
        started = time.monotonic()
        event = waiting.wait_for_calls_in_worker(
            Task(), FuseHook(), ["1", "2"], 1.0, time.time() + 2, max_requests_per_second=0.02
        )
    assert event["status"] == "timeout"
    assert time.monotonic() - started < GENEROUS

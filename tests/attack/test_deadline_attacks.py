"""Issue 12, item 5(a): a slow server cannot keep a wait past its deadline; Retry-After is bounded.

A loopback server drips its answer one byte every 0.2 s, which never trips a per-read timeout: the
whole answer would take 20 s and more. Each request is bounded by the time left (total time, not
per socket read), in the sync and the async path. The real-time bounds are generous (10 s for a 2 s
deadline); the drip alone would take twice that.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Any

import pytest
import requests_mock as rm
from aioresponses import aioresponses

from airflow_provider_fuse.exceptions import FuseConnectionError, FuseError, FuseRateLimitError
from airflow_provider_fuse.hooks.fuse import FuseHook
from tests.attack.loopback import DRIP_PAUSE, Loopback, connection, drip, json_answer
from tests.conftest import FUSE_URL

STATUS = json_answer(200, {"call_details": {"status": "completed", "pad": "x" * 40}})
DRIP_SECONDS = len(STATUS) * DRIP_PAUSE
GENEROUS = 10.0
assert DRIP_SECONDS > 2 * GENEROUS  # the drip must far outlast the bound the tests assert


def dripping_headers() -> Loopback:
    """The status line, the headers and the body, all one byte at a time."""
    return Loopback(drip(STATUS))


def dripping_body() -> Loopback:
    """Headers at once, then the body one byte at a time."""
    head, _, body = STATUS.partition(b"\r\n\r\n")

    def respond(request: Any, sock: Any) -> None:
        sock.sendall(head + b"\r\n\r\n")
        drip(body)(request, sock)

    return Loopback(respond)


@pytest.mark.parametrize("server", [dripping_headers, dripping_body])
def test_a_dripping_server_does_not_hold_a_sync_wait_past_its_deadline(
    monkeypatch: pytest.MonkeyPatch, server: Any
) -> None:
    with server() as fuse:
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection(fuse.url))
        started = time.monotonic()
        with pytest.raises(FuseConnectionError, match="timed out"):
            FuseHook(backoff=0).get_call("7", deadline=time.time() + 2)
        assert time.monotonic() - started < GENEROUS


@pytest.mark.parametrize("server", [dripping_headers, dripping_body])
def test_request_timeout_bounds_a_whole_request_not_each_read(
    monkeypatch: pytest.MonkeyPatch, server: Any
) -> None:
    with server() as fuse:
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection(fuse.url, request_timeout=2))
        started = time.monotonic()
        with pytest.raises(FuseConnectionError, match="timed out"):
            FuseHook(backoff=0).get_call("7")
        assert time.monotonic() - started < GENEROUS


@pytest.mark.parametrize("server", [dripping_headers, dripping_body])
async def test_a_dripping_server_does_not_hold_an_async_poll_past_its_deadline(
    monkeypatch: pytest.MonkeyPatch, server: Any
) -> None:
    with server() as fuse:
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection(fuse.url, request_timeout=2))
        started = time.monotonic()
        with pytest.raises(FuseConnectionError, match="timed out"):
            await FuseHook(backoff=0).aget_call("7")
        with pytest.raises(FuseError):
            await FuseHook(backoff=0).aget_call("7", deadline=time.time() + 2)
        assert time.monotonic() - started < 2 * GENEROUS


@pytest.mark.parametrize("retry_after", ["3600", "86400", formatdate(time.time() + 7200, usegmt=True)])
def test_retry_after_is_capped_at_60_seconds(fuse_conn: dict[str, str], retry_after: str) -> None:
    with rm.Mocker() as m, pytest.raises(FuseRateLimitError) as info:
        m.get(f"{FUSE_URL}/outbound/7", status_code=429, headers={"Retry-After": retry_after}, json={})
        FuseHook(backoff=0).get_call("7", deadline=time.time() + 5)
    assert info.value.retry_after == 60


def test_retry_after_may_be_an_http_date(fuse_conn: dict[str, str]) -> None:
    with rm.Mocker() as m, pytest.raises(FuseRateLimitError) as info:
        when = formatdate(time.time() + 30, usegmt=True)
        m.get(f"{FUSE_URL}/outbound/7", status_code=429, headers={"Retry-After": when}, json={})
        FuseHook(backoff=0).get_call("7", deadline=time.time() + 5)
    assert info.value.retry_after is not None and 20 <= info.value.retry_after <= 31


async def test_an_async_poll_never_waits_a_retry_after_past_its_deadline(
    fuse_conn: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("asyncio.sleep", fake_sleep)
    with aioresponses() as m:
        m.get(f"{FUSE_URL}/outbound/7", status=429, headers={"Retry-After": "25"}, payload={}, repeat=True)
        with pytest.raises(FuseRateLimitError):
            await FuseHook(backoff=0).aget_call("7", deadline=time.time() + 3)
    assert slept == []  # a 25 s wait would end past the 3 s deadline: give up at once

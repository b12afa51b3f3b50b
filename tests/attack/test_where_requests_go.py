"""Issue 12, items 2 and 3: a URL cannot send the developer key or a number to another host.

Hostile URLs are refused before any request: every request here is caught by requests-mock or
aioresponses (a catch-all matcher records it), so nothing ever goes to 192.0.2.x or anywhere else.
Redirects are tried against two loopback servers, the second recording whether it was reached.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

import pytest
import requests_mock as rm
from aioresponses import aioresponses
from hypothesis import example, given, settings
from hypothesis import strategies as st

from airflow_provider_fuse.exceptions import (
    FuseConfigurationError,
    FuseError,
    FuseResponseError,
    FuseValidationError,
)
from airflow_provider_fuse.hooks.fuse import FuseHook, base_url
from airflow_provider_fuse.models import CallRequest
from tests.attack.loopback import Loopback, Request, answer, connection, json_answer

NUMBER = "+16175550123"
HOSTILE_BASE_URLS = [
    "http://127.attacker.example/api",  # startswith("127.") is not loopback
    "http://192.0.2.2:8080\\@127.0.0.1/api",  # urllib3 connects to 192.0.2.2
    "http://127.0.0.1:8080\\@192.0.2.2/api",
    "http://localhost.attacker.example/api",
    "http://127.0.0.1.nip.io/api",
    "http://127.0.0.1 .attacker.example/api",  # whitespace
    "http://127.0.0.1\t@192.0.2.2/api",
    "http://127.0.0.1\x00.attacker.example/api",  # control character
    "http://127.0.0.1#@192.0.2.2/api",
    "https://ops:dk-SECRET-4242@fuse.example.com/api",  # user info
    "http://127.1/api",  # not an IP literal: resolved by the resolver, not loopback by rule
]
HOSTILE_RESULT_URLS = [
    "http://127.attacker.example/cb",
    "http://192.0.2.2:8080\\@127.0.0.1/cb",
    "http://localhost.attacker.example/cb",
    "https://user:pass@hooks.example.com/cb",
    "https://hooks.example.com/c b",
    "https://hooks.example.com/cb\r\nX-Injected: 1",
    "http://[::ffff:127.0.0.1]/cb",
]


def hostile_connection(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    conn = {"conn_type": "fuse", "host": host, "login": "ops@example.com", "password": "dk-SECRET-4242"}
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json.dumps(conn))


@pytest.mark.parametrize("host", HOSTILE_BASE_URLS)
def test_a_hostile_base_url_is_refused_before_any_request(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    hostile_connection(monkeypatch, host)
    with rm.Mocker() as m:
        m.register_uri(rm.ANY, re.compile(".*"), json={"call_id": "1"})
        with pytest.raises((FuseConfigurationError, FuseValidationError)) as info:
            FuseHook(backoff=0).queue_call(1, 2, CallRequest(NUMBER))
        assert m.call_count == 0
    assert "dk-SECRET-4242" not in str(info.value)


@pytest.mark.parametrize("host", HOSTILE_BASE_URLS[:3])
async def test_a_hostile_base_url_is_refused_by_the_async_path_too(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    hostile_connection(monkeypatch, host)
    with aioresponses() as m:
        m.get(re.compile(".*"), payload={"call_details": {"status": "completed"}}, repeat=True)
        with pytest.raises((FuseConfigurationError, FuseValidationError)):
            await FuseHook(backoff=0).aget_call("1")
        assert not m.requests


@pytest.mark.parametrize("url", HOSTILE_RESULT_URLS)
def test_a_hostile_result_url_is_refused(url: str) -> None:
    with pytest.raises(FuseValidationError, match="result_url"):
        CallRequest(NUMBER, result_url=url)


def _transport_host(url: str) -> str:
    """The host urllib3 (under requests) connects to, and check that yarl (under aiohttp) agrees."""
    import yarl
    from urllib3.util import parse_url

    urllib3_host = (parse_url(url).host or "").strip("[]").lower()
    assert (yarl.URL(url).host or "").lower() == urllib3_host, url
    return urllib3_host


URL_TEXT = st.text(alphabet="htps:/\\@.127.0.0.1abc[]:8 \t%#?:x", min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(host=st.one_of(URL_TEXT, st.builds(lambda rest: "http://" + rest, URL_TEXT)))
@example(host="http://192.0.2.2:8080\\@127.0.0.1/api")
@example(host="http://127.attacker.example/api")
def test_an_accepted_base_url_is_read_by_both_transports_as_checked(host: str) -> None:
    """Property: whatever host string passes, both HTTP clients connect where the rule looked."""
    try:
        url = base_url(host)
    except FuseError:
        return
    transport_host = _transport_host(url)
    if url.startswith("http://"):  # plain http: only to an IP literal on loopback, or localhost
        assert transport_host == "localhost" or ipaddress.ip_address(transport_host).is_loopback, url


# --- redirects (item 3) ---------------------------------------------------------------------------


class Elsewhere:
    """A second loopback server standing for "another host": it answers like Fuse, and records."""

    def __init__(self) -> None:
        self.server = Loopback(self.respond)

    def respond(self, request: Request, sock: Any) -> None:
        if request.method == "POST":
            sock.sendall(json_answer(200, {"call_id": "666"}))
        else:
            sock.sendall(json_answer(200, {"call_details": {"status": "completed"}}))


@pytest.fixture
def elsewhere() -> Any:
    target = Elsewhere()
    with target.server:
        yield target.server


def redirecting(status: int, target: Loopback) -> Loopback:
    def respond(request: Request, sock: Any) -> None:
        sock.sendall(answer(status, b"", {"Location": f"{target.url}{request.path}"}))

    return Loopback(respond)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirected_queue_request_is_not_resent_and_may_be_queued(
    monkeypatch: pytest.MonkeyPatch, elsewhere: Loopback, status: int
) -> None:
    with redirecting(status, elsewhere) as fuse:
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection(fuse.url))
        with pytest.raises(FuseResponseError, match=f"HTTP {status}") as info:
            FuseHook(backoff=0).queue_call(1, 2, CallRequest(NUMBER, variables={"pin": "1234"}))
    assert info.value.call_may_be_queued
    assert len(fuse.requests) == 1
    assert elsewhere.requests == []  # the number and the variables went nowhere else


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirected_status_request_does_not_accept_another_hosts_answer(
    monkeypatch: pytest.MonkeyPatch, elsewhere: Loopback, status: int
) -> None:
    with redirecting(status, elsewhere) as fuse:
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection(fuse.url))
        with pytest.raises(FuseResponseError, match="redirect"):
            FuseHook(backoff=0).get_call("5")
    assert elsewhere.requests == []


@pytest.mark.parametrize("status", [302, 307])
async def test_a_redirected_async_status_request_does_not_accept_another_hosts_answer(
    monkeypatch: pytest.MonkeyPatch, elsewhere: Loopback, status: int
) -> None:
    with redirecting(status, elsewhere) as fuse:
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection(fuse.url))
        with pytest.raises(FuseResponseError, match="redirect"):
            await FuseHook(backoff=0).aget_call("5")
    assert elsewhere.requests == []

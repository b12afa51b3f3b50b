"""FuseHook against requests-mock (sync) and aioresponses (async): status codes, retry rules, auth."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import requests
import requests_mock as rm
from aioresponses import aioresponses
from urllib3.exceptions import MaxRetryError, NewConnectionError

from airflow_provider_fuse.exceptions import (
    FuseAuthError,
    FuseConfigurationError,
    FuseConnectionError,
    FuseError,
    FuseNotFoundError,
    FuseRateLimitError,
    FuseRequestError,
    FuseResponseError,
    FuseServerError,
    FuseValidationError,
)
from airflow_provider_fuse.hooks import fuse as hook_module
from airflow_provider_fuse.hooks.fuse import USER_AGENT, FuseHook, RetryPolicy, base_url
from airflow_provider_fuse.models import CallDetails, CallRequest
from airflow_provider_fuse.phone import mask_phone
from tests.conftest import DEVELOPER_KEY, FUSE_URL, LOGIN

QUEUE_URL = f"{FUSE_URL}/apps/11/22/queue"
STATUS_URL = f"{FUSE_URL}/outbound/901"
SAMPLE = {
    "call_details": {
        "max_attempts": "1",
        "attempts": "1",
        "events": [
            {"event": "queued", "timestamp": 1475095892},
            {"event": "connected", "timestamp": 1475095925},
        ],
        "phone_number": "'6173720293'",
        "status": "completed",
        "queued_timestamp": "1475095892",
        "duration": 3,
    }
}


@pytest.fixture
def hook(fuse_conn: dict[str, str]) -> FuseHook:
    return FuseHook(backoff=0)


@pytest.fixture
def request_() -> CallRequest:
    return CallRequest("+16175551234", caller_id="8009957586", variables={"name": "Ann"})


def refused() -> requests.ConnectionError:
    return requests.ConnectionError(MaxRetryError(None, QUEUE_URL, NewConnectionError(None, "refused")))  # type: ignore[arg-type]


# --- queue -------------------------------------------------------------------------------------


def test_queue_call_sends_multipart_form_with_auth_and_returns_call_id(
    hook: FuseHook, request_: CallRequest
) -> None:
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": 901})
        assert hook.queue_call(11, 22, request_) == "901"
        sent = m.request_history[0]
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["User-Agent"] == USER_AGENT
    assert sent.headers["Authorization"].startswith("Basic ")
    assert sent.headers["Content-Type"].startswith("multipart/form-data")
    body = sent.body.decode()
    assert 'name="phone_number"\r\n\r\ntel:+16175551234;ani=+18009957586\r\n' in body
    assert 'name="call_parameters"\r\n\r\n{"name":"Ann"}\r\n' in body


def test_queue_call_falls_back_to_the_link_header(hook: FuseHook, request_: CallRequest) -> None:
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={}, headers={"Link": f"<{FUSE_URL}/outbound/777>"})
        assert hook.queue_call(11, 22, request_) == "777"


def test_queue_call_without_any_id_says_the_call_is_probably_queued(
    hook: FuseHook, request_: CallRequest
) -> None:
    with rm.Mocker() as m, pytest.raises(FuseResponseError, match="probably queued"):
        m.post(QUEUE_URL, json={"ok": True})
        hook.queue_call(11, 22, request_)


def test_variables_field_name_comes_from_the_connection_extra(
    monkeypatch: pytest.MonkeyPatch, request_: CallRequest
) -> None:
    conn = {"conn_type": "fuse", "host": FUSE_URL, "login": LOGIN, "password": DEVELOPER_KEY}
    conn["extra"] = json.dumps({"variables_field": "variables"})
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json.dumps(conn))
    with rm.Mocker() as m:
        m.post(QUEUE_URL, json={"call_id": "5"})
        FuseHook().queue_call(11, 22, request_)
        assert 'name="variables"' in m.request_history[0].body.decode()


@pytest.mark.parametrize(
    ("status", "error", "fuse_message"),
    [
        (400, FuseRequestError, "phone_number is required"),
        (401, FuseAuthError, "bad credentials"),
        (403, FuseAuthError, "no permission"),
        (404, FuseNotFoundError, "deployment not found"),
        (405, FuseRequestError, "method not allowed"),
        (409, FuseNotFoundError, "deployment deleted"),
        (500, FuseServerError, "database error"),
    ],
)
def test_each_status_maps_to_its_error_with_fuse_message(
    hook: FuseHook, request_: CallRequest, status: int, error: type[Exception], fuse_message: str
) -> None:
    with rm.Mocker() as m, pytest.raises(error) as info:
        m.post(QUEUE_URL, status_code=status, json={"error": fuse_message})
        hook.queue_call(11, 22, request_)
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert info.value.fuse_message == fuse_message  # type: ignore[attr-defined]
    assert f"HTTP {status}" in str(info.value) and fuse_message in str(info.value)
    assert DEVELOPER_KEY not in str(info.value)
    assert m.call_count == 1


def test_queue_500_is_not_retried_and_says_the_call_may_be_queued(
    hook: FuseHook, request_: CallRequest
) -> None:
    with rm.Mocker() as m, pytest.raises(FuseServerError, match="may have been queued") as info:
        m.post(QUEUE_URL, status_code=500, json={"error": "database error"})
        hook.queue_call(11, 22, request_)
    assert m.call_count == 1
    assert info.value.call_may_be_queued


def test_queue_read_timeout_is_sent_exactly_once(hook: FuseHook, request_: CallRequest) -> None:
    with rm.Mocker() as m, pytest.raises(FuseConnectionError, match="may have been queued") as info:
        m.post(QUEUE_URL, exc=requests.ReadTimeout)
        hook.queue_call(11, 22, request_)
    assert m.call_count == 1
    assert info.value.reached_fuse


def test_queue_dropped_connection_after_sending_is_not_retried(hook: FuseHook, request_: CallRequest) -> None:
    with rm.Mocker() as m, pytest.raises(FuseConnectionError, match="may have been queued"):
        m.post(QUEUE_URL, exc=requests.ConnectionError("Connection aborted: RemoteDisconnected"))
        hook.queue_call(11, 22, request_)
    assert m.call_count == 1


@pytest.mark.parametrize("failure", [requests.ConnectTimeout, "refused"])
def test_queue_is_retried_when_it_never_reached_fuse(
    hook: FuseHook, request_: CallRequest, failure: Any
) -> None:
    exc = refused() if failure == "refused" else failure
    with rm.Mocker() as m:
        m.post(QUEUE_URL, [{"exc": exc}, {"exc": exc}, {"json": {"call_id": 42}}])
        assert hook.queue_call(11, 22, request_) == "42"
    assert m.call_count == 3


def test_queue_refused_with_429_is_retried(hook: FuseHook, request_: CallRequest) -> None:
    with rm.Mocker() as m:
        m.post(
            QUEUE_URL,
            [
                {"status_code": 429, "json": {"error": "slow down"}, "headers": {"Retry-After": "0"}},
                {"json": {"call_id": 43}},
            ],
        )
        assert hook.queue_call(11, 22, request_) == "43"
    assert m.call_count == 2


def test_429_gives_up_after_the_retry_limit(monkeypatch: pytest.MonkeyPatch, request_: CallRequest) -> None:
    conn = {"conn_type": "fuse", "host": FUSE_URL, "login": LOGIN, "password": DEVELOPER_KEY}
    conn["extra"] = json.dumps({"retry_limit": 2})
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json.dumps(conn))
    with rm.Mocker() as m, pytest.raises(FuseRateLimitError) as info:
        m.post(QUEUE_URL, status_code=429, json={"error": "slow down"}, headers={"Retry-After": "0"})
        FuseHook(backoff=0).queue_call(11, 22, request_)
    assert m.call_count == 3
    assert info.value.retry_after == 0


# --- status, cancel, bulk ------------------------------------------------------------------------


def test_get_call_parses_the_documented_sample(hook: FuseHook) -> None:
    with rm.Mocker() as m:
        m.get(STATUS_URL, json=SAMPLE)
        details = hook.get_call(901)
    assert details.call_id == "901"
    assert details.status == "completed" and details.succeeded and details.is_terminal
    assert details.phone_number == "6173720293"
    assert details.attempts == 1 and details.duration == 3


def test_get_call_is_retried_on_5xx_and_timeouts(hook: FuseHook) -> None:
    with rm.Mocker() as m:
        m.get(
            STATUS_URL,
            [
                {"status_code": 503, "json": {"error": "busy"}},
                {"exc": requests.ReadTimeout},
                {"status_code": 500, "text": "oops"},
                {"json": SAMPLE},
            ],
        )
        assert hook.get_call(901).status == "completed"
    assert m.call_count == 4


def test_get_call_404_is_not_retried(hook: FuseHook) -> None:
    with rm.Mocker() as m, pytest.raises(FuseNotFoundError, match="call not found"):
        m.get(STATUS_URL, status_code=404, json={"error": "call not found"})
        hook.get_call(901)
    assert m.call_count == 1


def test_malformed_status_body_is_a_response_error(hook: FuseHook) -> None:
    with rm.Mocker() as m, pytest.raises(FuseResponseError, match="not JSON"):
        m.get(STATUS_URL, text="{not json")
        hook.get_call(901)


def test_cancel_pending_calls_sends_delete_and_retries_5xx(hook: FuseHook) -> None:
    with rm.Mocker() as m:
        m.delete(f"{FUSE_URL}/apps/11/22/cancel", [{"status_code": 502}, {"status_code": 202}])
        assert hook.cancel_pending_calls(11, 22) is None
    assert [r.method for r in m.request_history] == ["DELETE", "DELETE"]


def test_queue_calls_uploads_one_csv_with_shared_fields(hook: FuseHook) -> None:
    calls = [
        CallRequest("+16175551234", variables={"name": "Ann"}, max_attempts=2, reattempt_wait=120),
        CallRequest(
            "+16175550000", variables={"name": "Bob", "slot": "10am"}, max_attempts=2, reattempt_wait=120
        ),
    ]
    with rm.Mocker() as m:
        m.post(f"{FUSE_URL}/apps/11/22/bulk_queue", json={"call_ids": [1, 2]})
        assert hook.queue_calls(11, 22, calls) == ["1", "2"]
        body = m.request_history[0].body.decode()
    assert 'name="max_attempts"\r\n\r\n2\r\n' in body
    assert "destination,name,slot\ntel:+16175551234,Ann,\ntel:+16175550000,Bob,10am\n" in body


def test_queue_calls_with_missing_ids_refuses_to_guess(hook: FuseHook) -> None:
    calls = [CallRequest("+16175551234"), CallRequest("+16175550000")]
    with rm.Mocker() as m, pytest.raises(FuseResponseError, match="2 calls"):
        m.post(f"{FUSE_URL}/apps/11/22/bulk_queue", json={"call_ids": [1]})
        hook.queue_calls(11, 22, calls)


# --- test_connection and configuration -----------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "ok", "says"),
    [
        ({"status_code": 404, "json": {"error": "call not found"}}, True, "reachable"),
        ({"status_code": 401, "json": {"error": "invalid credentials"}}, False, "rejected the credentials"),
        ({"status_code": 403, "json": {"error": "inactive"}}, False, "rejected the credentials"),
        ({"exc": requests.ConnectTimeout}, False, "could not connect"),
    ],
)
def test_test_connection_tells_bad_credentials_from_reachable(
    hook: FuseHook, response: dict[str, Any], ok: bool, says: str
) -> None:
    with rm.Mocker() as m:
        m.get(f"{FUSE_URL}/outbound/0", **response)
        result = hook.test_connection()
    assert result[0] is ok and says in result[1]
    assert result[1].startswith(f"Fuse at {FUSE_URL}")
    assert DEVELOPER_KEY not in result[1]
    assert m.call_count == 1
    assert all(r.method == "GET" for r in m.request_history)


@pytest.mark.parametrize(
    ("host", "port", "schema", "expected"),
    [
        (None, None, None, "https://fuse.plumvoice.com/api"),
        ("fuse.example.com", None, None, "https://fuse.example.com/api"),
        ("https://fuse.example.com/api/", None, None, "https://fuse.example.com/api"),
        ("http://127.0.0.1", 8765, "api", "http://127.0.0.1:8765/api"),
        ("http://localhost:9000/custom", None, None, "http://localhost:9000/custom"),
    ],
)
def test_base_url(host: str | None, port: int | None, schema: str | None, expected: str) -> None:
    assert base_url(host, port, schema) == expected


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(FuseConfigurationError, match=r"http://.*fuse\.example\.com"):
        base_url("http://fuse.example.com/api")


def test_settings_never_show_the_developer_key(hook: FuseHook) -> None:
    assert DEVELOPER_KEY not in repr(hook.settings)
    assert hook.settings.login == LOGIN


# --- async ---------------------------------------------------------------------------------------


async def test_aget_call_parses_and_retries_5xx(hook: FuseHook) -> None:
    with aioresponses() as m:
        m.get(STATUS_URL, status=503, payload={"error": "busy"})
        m.get(STATUS_URL, status=200, payload=SAMPLE)
        details = await hook.aget_call(901)
    assert details.status == "completed"
    assert sum(len(v) for v in m.requests.values()) == 2


async def test_aget_call_honours_retry_after_on_429(hook: FuseHook, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr("asyncio.sleep", fake_sleep)
    with aioresponses() as m:
        m.get(STATUS_URL, status=429, payload={"error": "slow"}, headers={"Retry-After": "7"})
        m.get(STATUS_URL, status=200, payload=SAMPLE)
        assert (await hook.aget_call(901)).succeeded
    assert waits == [7.0]


async def test_aget_call_auth_error_is_not_retried(hook: FuseHook) -> None:
    with aioresponses() as m, pytest.raises(FuseAuthError, match="HTTP 401"):
        m.get(STATUS_URL, status=401, payload={"error": "bad credentials"})
        m.get(STATUS_URL, status=200, payload=SAMPLE)
        await hook.aget_call(901)


async def test_concurrent_waits_share_one_aiohttp_session(hook: FuseHook) -> None:
    sessions = []
    async with hook.hold_session() as first:
        async with FuseHook(backoff=0).hold_session() as second:
            sessions = [first, second]
        assert not first.closed
    assert sessions[0] is sessions[1]
    assert sessions[0].closed


async def test_a_held_wait_resolves_its_path_policy_and_session_once(
    hook: FuseHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18: the polls of one wait share what does not change; only the request is per poll."""
    checked: list[str | int] = []
    policies: list[RetryPolicy] = []
    entered: list[object] = []
    sessions: set[int] = set()
    status_path, policy, pool = hook_module.status_path, FuseHook._policy, hook_module._shared_sessions
    aget = hook_module._aget

    def spy_path(call_id: str | int) -> str:
        checked.append(call_id)
        return status_path(call_id)

    def spy_policy(self: FuseHook, *args: Any, **kwargs: Any) -> RetryPolicy:
        policies.append(policy(self, *args, **kwargs))
        return policies[-1]

    def spy_pool(settings: Any) -> Any:
        entered.append(settings)
        return type(pool).session(pool, settings)

    async def spy_aget(session: Any, *rest: Any) -> Any:
        sessions.add(id(session))
        return await aget(session, *rest)

    monkeypatch.setattr(hook_module, "status_path", spy_path)
    monkeypatch.setattr(FuseHook, "_policy", spy_policy)
    monkeypatch.setattr(pool, "session", spy_pool)
    monkeypatch.setattr(hook_module, "_aget", spy_aget)
    deadline = time.time() + 3600
    with aioresponses() as m:
        m.get(STATUS_URL, payload=SAMPLE, repeat=True)
        async with hook.hold_session():
            for _ in range(3):
                assert (await hook.aget_call(901, deadline=deadline)).succeeded
    assert checked == [901]
    assert [p.deadline for p in policies] == [deadline]
    assert len(entered) == 1, "each poll went through the session pool again"
    assert len(sessions) == 1


async def test_a_new_deadline_or_call_is_not_served_from_the_last_poll(
    hook: FuseHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What one poll kept for the next is kept only for the same call, deadline and backoff."""
    sent: list[tuple[str, float | None, float]] = []
    aget = hook_module._aget

    async def spy(session: Any, settings: Any, path: str, policy: RetryPolicy, *rest: Any) -> Any:
        sent.append((path, policy.deadline, policy.backoff))
        return await aget(session, settings, path, policy, *rest)

    monkeypatch.setattr(hook_module, "_aget", spy)
    soon, later = time.time() + 600, time.time() + 1200
    with aioresponses() as m:
        m.get(re.compile(rf"{re.escape(FUSE_URL)}/outbound/\d+"), payload=SAMPLE, repeat=True)
        async with hook.hold_session():
            await hook.aget_call(901, deadline=soon)
            await hook.aget_call(901, deadline=later)
            await hook.aget_call(902, deadline=later)
            hook.backoff = 2.5
            await hook.aget_call(902, deadline=later)
        await hook.aget_call(901)  # no longer held: through the pool, as before any wait
    assert sent == [
        ("/outbound/901", soon, 0),
        ("/outbound/901", later, 0),
        ("/outbound/902", later, 0),
        ("/outbound/902", later, 2.5),
        ("/outbound/901", None, 2.5),
    ]
    assert [str(url) for _, url in m.requests] == [f"{FUSE_URL}/outbound/{n}" for n in (901, 902)]


async def test_an_unchanged_answer_is_not_parsed_again(
    hook: FuseHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18: a call waiting to be dialed answers the same bytes poll after poll; one parse serves them."""
    parsed: list[Any] = []
    from_api = CallDetails.from_api.__func__

    def spy(cls: Any, data: Any, call_id: str | None = None) -> CallDetails:
        parsed.append(data)
        return from_api(cls, data, call_id)

    monkeypatch.setattr(CallDetails, "from_api", classmethod(spy))
    waiting = {"call_details": {**SAMPLE["call_details"], "status": "queued", "attempts": "0"}}
    with aioresponses() as m:
        for payload in (waiting, waiting, waiting, SAMPLE, SAMPLE):
            m.get(STATUS_URL, payload=payload)
        async with hook.hold_session():
            seen = [await hook.aget_call(901) for _ in range(5)]
    assert [d.status for d in seen] == ["queued"] * 3 + ["completed"] * 2
    assert len(parsed) == 2, "an identical answer was parsed again"
    assert seen[0] == seen[2] and seen[3] == seen[4] and seen[3].to_dict()["phone_number"] == "61***293"


def test_no_request_carries_the_key_in_the_url(hook: FuseHook) -> None:
    with rm.Mocker() as m:
        m.get(re.compile(".*"), json=SAMPLE)
        hook.get_call(901)
    assert DEVELOPER_KEY not in m.request_history[0].url


@pytest.mark.parametrize("bad", ["1/../../outbound/5", "", "12a", -3, True, None, "\uff11\uff12"])
def test_non_numeric_deployment_ids_never_reach_a_url(
    hook: FuseHook, request_: CallRequest, bad: Any
) -> None:
    with rm.Mocker() as m:
        with pytest.raises(FuseValidationError, match="application_id"):
            hook.queue_call(bad, 22, request_)
        with pytest.raises(FuseValidationError, match="deployment_id"):
            hook.cancel_pending_calls(11, bad)
        assert m.call_count == 0


def test_call_ids_are_checked_before_they_reach_the_status_path(hook: FuseHook) -> None:
    with rm.Mocker() as m:
        m.get(f"{FUSE_URL}/outbound/A-7_x", json=SAMPLE)
        assert hook.get_call("A-7_x").call_id == "A-7_x"
        with pytest.raises(FuseValidationError, match="call_id"):
            hook.get_call("../5")
        assert [r.path for r in m.request_history] == ["/api/outbound/a-7_x"]


# --- one retry policy for both paths -------------------------------------------------------------

SCENARIOS = {
    "5xx then ok": [{"status": 503}, {"status": 500}, {"status": 200}],
    "429 with Retry-After then ok": [{"status": 429, "retry_after": "7"}, {"status": 200}],
    "404 is final": [{"status": 404}, {"status": 200}],
    "429 storm past the limit": [{"status": 429, "retry_after": "2"}] * 4,
}


def _sync_run(steps: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> tuple[list[float], int, str]:
    slept: list[float] = []
    monkeypatch.setattr("time.sleep", slept.append)
    responses = [
        {"status_code": s["status"], "json": SAMPLE if s["status"] == 200 else {"error": "x"}}
        | ({"headers": {"Retry-After": s["retry_after"]}} if "retry_after" in s else {})
        for s in steps
    ]
    with rm.Mocker() as m:
        m.get(STATUS_URL, responses)
        try:
            outcome = FuseHook(backoff=0).get_call(901).status
        except FuseError as err:
            outcome = type(err).__name__
        return slept, m.call_count, outcome


async def _async_run(
    steps: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> tuple[list[float], int, str]:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("asyncio.sleep", fake_sleep)
    with aioresponses() as m:
        for s in steps:
            headers = {"Retry-After": s["retry_after"]} if "retry_after" in s else None
            m.get(
                STATUS_URL,
                status=s["status"],
                payload=SAMPLE if s["status"] == 200 else {"error": "x"},
                headers=headers,
            )
        try:
            outcome = (await FuseHook(backoff=0).aget_call(901)).status
        except FuseError as err:
            outcome = type(err).__name__
        return slept, sum(len(v) for v in m.requests.values()), outcome


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_sync_and_async_requests_follow_one_retry_policy(
    monkeypatch: pytest.MonkeyPatch, scenario: str
) -> None:
    conn = {"conn_type": "fuse", "host": FUSE_URL, "login": LOGIN, "password": DEVELOPER_KEY}
    conn["extra"] = json.dumps({"retry_limit": 2})
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json.dumps(conn))
    sync = _sync_run(SCENARIOS[scenario], monkeypatch)
    assert sync == await _async_run(SCENARIOS[scenario], monkeypatch)
    assert sync[1] <= 3  # retry_limit 2: three tries at most


async def test_both_paths_always_ask_for_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the wire (a loopback server): JSON asked for, gzip at most, Basic auth, by both clients."""
    from tests.attack.loopback import Loopback, connection, json_answer

    def respond(request: Any, sock: Any) -> None:
        sock.sendall(json_answer(200, SAMPLE))

    with Loopback(respond) as fuse:
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection(fuse.url))
        FuseHook().get_call(901)
        await FuseHook().aget_call(901)
    assert len(fuse.requests) == 2
    for request in fuse.requests:
        assert request.headers["accept"] == "application/json"
        assert request.headers["accept-encoding"] == "gzip, deflate"
        assert request.headers["authorization"].startswith("Basic ")
        assert request.headers["user-agent"] == USER_AGENT


def test_retry_policy_never_waits_past_the_deadline() -> None:
    from airflow_provider_fuse.hooks.fuse import RetryPolicy

    busy = FuseServerError("busy", retry_after=5.0)
    policy = RetryPolicy(safe_to_repeat=True, retries=3, backoff=1.0, deadline=100.0)
    assert policy.wait(busy, 1, now=90.0) == 5.0
    assert policy.wait(busy, 1, now=96.0) is None  # the retry would start past the deadline
    assert policy.wait(busy, 4, now=0.0) is None  # retries spent
    assert policy.time_for_request(30.0, now=95.0) == 5.0
    assert policy.time_for_request(30.0, now=200.0) == 0.1  # a last poll at the deadline is short
    assert RetryPolicy(True, 3, 1.0).time_for_request(30.0, now=200.0) == 30.0


@pytest.mark.parametrize(
    ("error", "safe", "retried"),
    [
        (FuseRateLimitError("slow"), False, True),
        (FuseServerError("busy"), False, False),
        (FuseServerError("busy"), True, True),
        (FuseConnectionError("refused", reached_fuse=False), False, True),
        (FuseConnectionError("dropped", reached_fuse=True), False, False),
        (FuseConnectionError("dropped", reached_fuse=True), True, True),
        (FuseResponseError("garbled"), True, False),
        (FuseAuthError("no"), True, False),
    ],
)
def test_retry_policy_is_idempotency_aware(error: FuseError, safe: bool, retried: bool) -> None:
    from airflow_provider_fuse.hooks.fuse import RetryPolicy

    assert RetryPolicy(safe, retries=1, backoff=0).should_retry(error) is retried


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("0", 0.0), ("1.5", 1.5), ("999999", 60.0), ("soon", None), (None, None), ("-3", None)],
)
def test_retry_after_in_seconds(header: str | None, expected: float | None) -> None:
    from airflow_provider_fuse.hooks.fuse import _retry_after

    assert _retry_after(header, now=1_000_000.0) == expected


def test_retry_after_as_an_http_date() -> None:
    from email.utils import formatdate

    from airflow_provider_fuse.hooks.fuse import _retry_after

    now = 1_700_000_000.0
    assert _retry_after(formatdate(now + 20, usegmt=True), now) == 20.0
    assert _retry_after(formatdate(now - 20, usegmt=True), now) == 0.0
    assert _retry_after(formatdate(now + 3600, usegmt=True), now) == 60.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("phone_number is required", "phone_number is required"),
        ("max_attempts must be 1 to 10", "max_attempts must be 1 to 10"),
        ("destination 16175550123 refused", f"destination {mask_phone('16175550123')} refused"),
        ("call +1 (617) 555-0123 failed", f"call {mask_phone('+16175550123')} failed"),
        ("card 4111...", "card ***..."),
    ],
)
def test_fuse_error_text_has_digit_runs_masked(text: str, expected: str) -> None:
    """Runs of three digits or more go through the project's masking (phone.mask_phone)."""
    from airflow_provider_fuse.hooks.fuse import _fuse_text

    assert _fuse_text(text) == expected


def test_fuse_error_text_is_shortened() -> None:
    from airflow_provider_fuse.hooks.fuse import MAX_FUSE_MESSAGE, _fuse_text

    shown = _fuse_text("x" * 10_000) or ""
    assert len(shown) == MAX_FUSE_MESSAGE and shown.endswith("...")


async def test_an_async_redirect_is_an_error(hook: FuseHook) -> None:
    with aioresponses() as m:
        m.get(STATUS_URL, status=302, headers={"Location": "https://elsewhere.test/x"})
        with pytest.raises(FuseResponseError, match="redirect"):
            await hook.aget_call(901)

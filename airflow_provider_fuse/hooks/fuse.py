"""FuseHook: the only code that speaks HTTP to Fuse.

Sync calls use one ``requests.Session`` per hook; async calls (triggers) share one
``aiohttp.ClientSession`` per event loop and connection settings. Both follow the same retry rules:

* reads and cancels are retried on network errors, timeouts, 429 and 5xx;
* a queue request is retried ONLY when it provably never reached Fuse (connection refused, DNS
  failure, connect timeout) or Fuse refused it with 429, because Fuse has no idempotency key and a
  second request could ring the same person twice.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

import tenacity
from airflow.sdk import BaseHook

from airflow_provider_fuse import DEFAULT_CONN_ID, __version__, protocol
from airflow_provider_fuse.exceptions import (
    FuseAuthError,
    FuseConfigurationError,
    FuseConnectionError,
    FuseError,
    FuseNotFoundError,
    FuseRateLimitError,
    FuseRemoteError,
    FuseRequestError,
    FuseResponseError,
    FuseServerError,
)
from airflow_provider_fuse.models import CallDetails, CallRequest
from airflow_provider_fuse.validation import is_loopback_host, path_id

if TYPE_CHECKING:
    import aiohttp
    import requests

USER_AGENT = f"airflow-provider-fuse/{__version__}"
DEFAULT_REQUEST_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_RETRY_LIMIT = 5
#: Longest wait between two tries, also the cap on a Retry-After that Fuse asks for.
MAX_BACKOFF = 60.0
#: Shortest read timeout of a status request made close to a wait's deadline.
MIN_READ_TIMEOUT = 0.1


@dataclass(frozen=True)
class FuseSettings:
    """What a hook needs from the Airflow connection, read once and checked."""

    base_url: str
    login: str
    password: str
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    retry_limit: int = DEFAULT_RETRY_LIMIT
    default_region: str = "US"
    variables_field: str = protocol.DEFAULT_VARIABLES_FIELD

    def __repr__(self) -> str:  # the developer key must never reach a log line
        return f"FuseSettings(base_url={self.base_url!r}, login={self.login!r}, password='***')"

    @classmethod
    def from_connection(cls, conn: Any) -> FuseSettings:
        extra = conn.extra_dejson or {}
        if not conn.login or not conn.password:
            raise FuseConfigurationError(
                f"Connection {conn.conn_id!r} needs the Fuse login e-mail (login) and developer key (password)."
            )
        return cls(
            base_url=base_url(conn.host, conn.port, conn.schema),
            login=conn.login,
            password=conn.password,
            request_timeout=_positive(extra, "request_timeout", DEFAULT_REQUEST_TIMEOUT),
            connect_timeout=_positive(extra, "connect_timeout", DEFAULT_CONNECT_TIMEOUT),
            retry_limit=int(_positive(extra, "retry_limit", DEFAULT_RETRY_LIMIT, allow_zero=True)),
            default_region=str(extra.get("default_region") or "US").upper(),
            variables_field=str(extra.get("variables_field") or protocol.DEFAULT_VARIABLES_FIELD),
        )


def base_url(host: str | None, port: int | None = None, schema: str | None = None) -> str:
    """The API base URL from a connection's host (a URL or a bare name), port and schema."""
    if not host:
        return protocol.DEFAULT_BASE_URL
    parts = urlsplit(host if "://" in host else f"https://{host}")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise FuseConfigurationError(f"The connection host {host!r} is not an http(s) URL or host name.")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise FuseConfigurationError(
            f"Refusing plain http:// to {parts.hostname}: credentials and phone numbers need https://. "
            "(http is allowed only for a loopback host such as the FuseSimulator.)"
        )
    netloc = parts.netloc if parts.port or not port else f"{parts.netloc}:{port}"
    path = parts.path.rstrip("/") or ("/" + schema.strip("/") if schema else "/api")
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def _positive(extra: Mapping[str, Any], key: str, default: float, allow_zero: bool = False) -> float:
    value = extra.get(key)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if number < 0 or (number == 0 and not allow_zero):
        raise FuseConfigurationError(f"Connection extra {key!r} must be a positive number, got {value!r}.")
    return number


# --- answers: status codes to errors, bodies to values (shared by sync and async) --------------


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body.strip() else None
        except (ValueError, RecursionError):
            raise FuseResponseError(
                f"Fuse answered HTTP {self.status} with a body that is not JSON.", status_code=self.status
            ) from None


_ERRORS_BY_STATUS: dict[int, type[FuseRemoteError]] = {
    400: FuseRequestError,
    401: FuseAuthError,
    403: FuseAuthError,
    404: FuseNotFoundError,
    405: FuseRequestError,
    409: FuseNotFoundError,
    429: FuseRateLimitError,
}


def _check(answer: _Answer, method: str, path: str, queueing: bool) -> _Answer:
    """Raise the error class that fits the status, with Fuse's own message; else return the answer."""
    if answer.status < 400:
        return answer
    try:
        fuse_message = protocol.error_message(answer.json())
    except FuseResponseError:
        fuse_message = None
    cls = _ERRORS_BY_STATUS.get(answer.status) or (
        FuseServerError if answer.status >= 500 else FuseRemoteError
    )
    message = f"Fuse answered HTTP {answer.status} to {method} {path}: {fuse_message or 'no error message'}"
    may_be_queued = queueing and answer.status >= 500
    if may_be_queued:
        message += ". The call may have been queued anyway: check Fuse before queueing it again."
    kwargs: dict[str, Any] = {"status_code": answer.status, "fuse_message": fuse_message}
    if cls in (FuseRateLimitError, FuseServerError):
        kwargs["retry_after"] = _retry_after(answer.headers)
    error = cls(message, **kwargs)
    error.call_may_be_queued = may_be_queued
    raise error


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _call_id(answer: _Answer) -> str:
    link = next((v for k, v in answer.headers.items() if k.lower() == "link"), None)
    try:
        body = answer.json()
    except FuseResponseError:
        body = None  # Fuse accepted the request: the Link header may still name the call
    call_id = protocol.parse_queue_response(body, link)
    if call_id is None:
        raise FuseResponseError(
            "Fuse accepted the queue request but its answer names no call id; the call is probably "
            "queued: check Fuse before queueing it again.",
            status_code=answer.status,
        )
    return call_id


def _call_details(answer: _Answer, call_id: str) -> CallDetails:
    return CallDetails.from_api(answer.json(), call_id=call_id)


# --- retry policy (shared by sync and async) ---------------------------------------------------


def _retryable(safe_to_repeat: bool) -> Callable[[BaseException], bool]:
    """Which failures are worth another try; a queue request is not "safe to repeat"."""

    def decide(error: BaseException) -> bool:
        if isinstance(error, FuseRateLimitError):
            return True
        if isinstance(error, FuseConnectionError):
            return safe_to_repeat or not error.reached_fuse
        return safe_to_repeat and isinstance(error, FuseServerError)

    return decide


def backoff_seconds(error: BaseException | None, attempt: int, backoff: float) -> float:
    """Retry-After when Fuse sends one (capped), else exponential backoff with full jitter."""
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        return float(min(retry_after, MAX_BACKOFF))
    return random.uniform(0, min(MAX_BACKOFF, backoff * 2 ** (attempt - 1)))


def _wait(backoff: float, deadline: float | None = None) -> Callable[[tenacity.RetryCallState], float]:
    """``backoff_seconds`` as a tenacity wait strategy, never waiting past ``deadline`` (Unix time)."""

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        seconds = backoff_seconds(error, state.attempt_number, backoff)
        return seconds if deadline is None else max(0.0, min(seconds, deadline - time.time()))

    return wait


def _stop(limit: int, deadline: float | None) -> Callable[[tenacity.RetryCallState], bool]:
    """Stop after ``limit`` retries, or once ``deadline`` (Unix time) has passed."""

    def stop(state: tenacity.RetryCallState) -> bool:
        return state.attempt_number > limit or (deadline is not None and time.time() >= deadline)

    return stop


class FuseHook(BaseHook):
    """Talk to Plum Fuse through the Airflow connection ``fuse_conn_id``.

    :param fuse_conn_id: Airflow connection of type ``fuse``: host = base URL, login = e-mail,
        password = developer key.
    :param backoff: first retry wait in seconds (doubled each try, with jitter); tests set 0.
    """

    conn_name_attr = "fuse_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "fuse"
    hook_name = "Plum Fuse"

    #: First retry wait in seconds, doubled each try, with jitter.
    backoff: float = 1.0

    def __init__(self, fuse_conn_id: str = DEFAULT_CONN_ID, *, backoff: float | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.fuse_conn_id = fuse_conn_id
        if backoff is not None:
            self.backoff = backoff
        self._async_settings: FuseSettings | None = None

    # --- settings and sessions ---

    @cached_property
    def settings(self) -> FuseSettings:
        return FuseSettings.from_connection(self.get_connection(self.fuse_conn_id))

    async def asettings(self) -> FuseSettings:
        """The settings, read through the async connection API (no blocking call in a trigger)."""
        if self._async_settings is None:
            conn = await self.aget_connection(self.fuse_conn_id)
            self._async_settings = FuseSettings.from_connection(conn)
        return self._async_settings

    def get_conn(self) -> requests.Session:
        """The hook's one HTTP session: auth, JSON, and a User-Agent naming this package."""
        return self._session

    @cached_property
    def _session(self) -> requests.Session:
        import requests

        session = requests.Session()
        session.auth = (self.settings.login, self.settings.password)
        session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
        return session

    # --- the API ---

    def queue_call(self, application_id: int | str, deployment_id: int | str, request: CallRequest) -> str:
        """Queue one call and return its id. Never repeated once it may have reached Fuse."""
        path = protocol.queue_path(*_deployment(application_id, deployment_id))
        form = request.to_form(self.settings.variables_field)
        answer = self._request("POST", path, files=_multipart(form), safe_to_repeat=False)
        return _call_id(answer)

    def queue_calls(
        self, application_id: int | str, deployment_id: int | str, requests: Sequence[CallRequest]
    ) -> list[str]:
        """Queue many calls in one bulk_queue upload; returns their ids in the same order.

        The window, attempts, result_url and is_pci of the first request apply to every row (Fuse
        takes them once per upload); callers group requests that share them.
        """
        if not requests:
            return []
        path = protocol.bulk_queue_path(*_deployment(application_id, deployment_id))
        csv_data = protocol.build_bulk_csv((r.tel_uri, r.variables) for r in requests)
        files: dict[str, Any] = _multipart(requests[0].shared_form())
        files[protocol.BULK_CSV_FIELD] = ("calls.csv", csv_data, "text/csv")
        answer = self._request("POST", path, files=files, safe_to_repeat=False)
        call_ids = protocol.parse_bulk_queue_response(answer.json())
        if call_ids is None or len(call_ids) != len(requests):
            raise FuseResponseError(
                f"Fuse accepted a bulk upload of {len(requests)} calls but did not answer their ids "
                f"({'none' if call_ids is None else len(call_ids)} found); the calls are probably queued: "
                "check Fuse before uploading again.",
                status_code=answer.status,
            )
        return call_ids

    def get_call(self, call_id: str | int, *, deadline: float | None = None) -> CallDetails:
        """The call's current details; retries and timeouts end by ``deadline`` (Unix time), if given."""
        answer = self._request("GET", _status_path(call_id), safe_to_repeat=True, deadline=deadline)
        return _call_details(answer, str(call_id))

    def cancel_pending_calls(self, application_id: int | str, deployment_id: int | str) -> None:
        """Cancel EVERY pending call of the deployment: Fuse has no per-call cancel."""
        path = protocol.cancel_path(*_deployment(application_id, deployment_id))
        self._request("DELETE", path, safe_to_repeat=True)

    def test_connection(self) -> tuple[bool, str]:
        """Ask for a call that cannot exist: 404 proves the credentials, 401/403 rejects them."""
        where = "Fuse"
        try:
            where = f"Fuse at {self.settings.base_url}"
            self._request("GET", protocol.status_path(protocol.PROBE_CALL_ID), safe_to_repeat=True, retries=0)
        except FuseAuthError as err:
            return (
                False,
                f"{where} rejected the credentials (HTTP {err.status_code}): {err.fuse_message or ''}",
            )
        except FuseError as err:
            if not isinstance(err, FuseNotFoundError):
                return False, f"{where}: {err}"
        return True, f"{where} is reachable and accepted the credentials."

    async def aget_call(self, call_id: str | int) -> CallDetails:
        """The call's current details, without blocking the event loop (for triggers)."""
        settings = await self.asettings()
        path = _status_path(call_id)
        retryable = _retryable(safe_to_repeat=True)
        async with _shared_sessions.session(settings) as session:
            # A plain loop, not tenacity's AsyncRetrying: thousands of triggers poll through here, and
            # AsyncRetrying costs CPU and leaves cyclic garbage on every call (benchmarks/trigger_scale.py).
            attempt = 0
            while True:
                attempt += 1
                try:
                    answer = _check(await _aget(session, settings, path), "GET", path, queueing=False)
                    return _call_details(answer, str(call_id))
                except FuseError as error:
                    if not retryable(error) or attempt > settings.retry_limit:
                        raise
                    await asyncio.sleep(backoff_seconds(error, attempt, self.backoff))

    @contextlib.asynccontextmanager
    async def hold_session(self) -> AsyncIterator[aiohttp.ClientSession]:
        """Keep the shared aiohttp session open across the polls of one wait (a trigger's ``run``)."""
        async with _shared_sessions.session(await self.asettings()) as session:
            yield session

    # --- plumbing ---

    def _retry_policy(
        self,
        settings: FuseSettings,
        safe_to_repeat: bool,
        retries: int | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        limit = settings.retry_limit if retries is None else retries
        return {
            "retry": tenacity.retry_if_exception(_retryable(safe_to_repeat)),
            "stop": _stop(int(limit), deadline),
            "wait": _wait(self.backoff, deadline),
            "reraise": True,
        }

    def _request(
        self,
        method: str,
        path: str,
        *,
        safe_to_repeat: bool,
        retries: int | None = None,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> _Answer:
        settings = self.settings
        policy = self._retry_policy(settings, safe_to_repeat, retries, deadline)
        for attempt in tenacity.Retrying(**policy):
            with attempt:
                answer = self._send(method, path, queueing=not safe_to_repeat, deadline=deadline, **kwargs)
        return answer

    def _send(
        self, method: str, path: str, *, queueing: bool, deadline: float | None = None, **kwargs: Any
    ) -> _Answer:
        import requests

        url = self.settings.base_url + path
        read_timeout = self.settings.request_timeout
        if deadline is not None:  # a wait with a deadline never blocks past it on one slow answer
            read_timeout = max(MIN_READ_TIMEOUT, min(read_timeout, deadline - time.time()))
        timeout = (self.settings.connect_timeout, read_timeout)
        try:
            response = self._session.request(method, url, timeout=timeout, **kwargs)
        except requests.RequestException as err:
            raise _transport_error(err, method, path, queueing) from None
        answer = _Answer(response.status_code, response.content, dict(response.headers))
        return _check(answer, method, path, queueing)


def _status_path(call_id: str | int) -> str:
    """A call id from anywhere (a template, Fuse's Link header) can only name one call."""
    return protocol.status_path(quote(str(call_id), safe=""))


def _deployment(application_id: int | str, deployment_id: int | str) -> tuple[str, str]:
    return path_id("application_id", application_id), path_id("deployment_id", deployment_id)


def _multipart(form: Mapping[str, str]) -> dict[str, Any]:
    """Form fields as multipart/form-data parts (requests sends ``files`` as multipart)."""
    return {name: (None, value) for name, value in form.items()}


def _transport_error(err: Exception, method: str, path: str, queueing: bool) -> FuseConnectionError:
    """Classify a requests failure: did the request provably never reach Fuse?"""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    reason: Any = err.args[0] if err.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    never_reached = isinstance(err, requests.ConnectTimeout) or isinstance(
        reason, (NewConnectionError, ConnectTimeoutError)
    )
    if never_reached:
        message = f"{method} {path} could not connect to Fuse ({type(reason or err).__name__})."
    else:
        kind = "timed out" if isinstance(err, requests.Timeout) else "failed"
        message = f"{method} {path} {kind} before Fuse answered ({type(err).__name__})."
    if queueing and not never_reached:
        message += " The call may have been queued: check Fuse before queueing it again."
    return FuseConnectionError(message, reached_fuse=not never_reached)


async def _aget(session: aiohttp.ClientSession, settings: FuseSettings, path: str) -> _Answer:
    import aiohttp

    try:
        async with session.get(settings.base_url + path) as response:
            return _Answer(response.status, await response.read(), dict(response.headers))
    except aiohttp.ClientConnectorError as err:
        raise FuseConnectionError(
            f"GET {path} could not connect ({type(err).__name__}).", reached_fuse=False
        ) from None
    except (aiohttp.ClientError, asyncio.TimeoutError) as err:
        raise FuseConnectionError(
            f"GET {path} failed before Fuse answered ({type(err).__name__}).", reached_fuse=True
        ) from None


class _SessionPool:
    """One aiohttp session per event loop and connection settings, closed when its last user leaves.

    Thousands of triggers in one triggerer share a session (and its connection pool) instead of
    opening one per poll, which is what made other providers' async hooks expensive.
    """

    def __init__(self) -> None:
        self._sessions: dict[tuple[int, FuseSettings], tuple[aiohttp.ClientSession, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def session(self, settings: FuseSettings) -> AsyncIterator[aiohttp.ClientSession]:
        key = (id(asyncio.get_running_loop()), settings)
        entry = self._sessions.get(key)
        if entry is None or entry[0].closed:
            entry = self._sessions[key] = (_new_session(settings), [0])
        session, users = entry
        users[0] += 1
        try:
            yield session
        finally:
            users[0] -= 1
            if users[0] == 0 and self._sessions.get(key) is entry:
                del self._sessions[key]
                await session.close()


def _new_session(settings: FuseSettings) -> aiohttp.ClientSession:
    import aiohttp

    credentials = base64.b64encode(f"{settings.login}:{settings.password}".encode()).decode()
    return aiohttp.ClientSession(
        headers={
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "Authorization": f"Basic {credentials}",
        },
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=settings.connect_timeout, sock_read=settings.request_timeout
        ),
        connector=aiohttp.TCPConnector(limit=100),
    )


_shared_sessions = _SessionPool()

"""FuseHook: the only code that speaks HTTP to Fuse.

Sync calls use one ``requests.Session`` per hook; async calls (triggers) share one
``aiohttp.ClientSession`` per event loop and connection settings. Both paths follow one
``RetryPolicy`` and the same limits:

* reads and cancels are retried on network errors, timeouts, 429 and 5xx;
* a queue request is retried ONLY when it provably never reached Fuse (connection refused, DNS
  failure, connect timeout) or Fuse refused it with 429, because Fuse has no idempotency key and a
  second request could ring the same person twice;
* Retry-After (seconds or an HTTP date) is honoured up to ``MAX_BACKOFF``; no try and no wait runs
  past a caller's deadline, and each request, start to end, is cut to the time left;
* redirects are never followed (a 3xx is an error), and no answer is read past ``MAX_BODY_BYTES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import BaseHook

from airflow_provider_fuse import DEFAULT_CONN_ID, __version__, protocol
from airflow_provider_fuse.connection import FuseSettings, base_url, status_path
from airflow_provider_fuse.exceptions import (
    FuseAuthError,
    FuseConnectionError,
    FuseError,
    FuseNotFoundError,
    FuseRateLimitError,
    FuseRemoteError,
    FuseRequestError,
    FuseResponseError,
    FuseServerError,
    FuseValidationError,
)
from airflow_provider_fuse.hooks.body import ACCEPT_ENCODING, MAX_BODY_BYTES, BoundedBody
from airflow_provider_fuse.models import CallDetails, CallRequest
from airflow_provider_fuse.phone import mask_phone
from airflow_provider_fuse.urls import check_call_id
from airflow_provider_fuse.validation import path_id

if TYPE_CHECKING:
    import aiohttp
    import requests
    import yarl

__all__ = ["MAX_BODY_BYTES", "FuseHook", "FuseSettings", "RetryPolicy", "base_url"]

T = TypeVar("T")
USER_AGENT = f"airflow-provider-fuse/{__version__}"
#: Longest wait between two tries, also the cap on a Retry-After that Fuse asks for.
MAX_BACKOFF = 60.0
#: A request sent at a wait's deadline still gets this long, so that a last poll can see a call end.
MIN_REQUEST_SECONDS = 0.1
#: Longest part of Fuse's own error text copied into an error (and so into logs and trigger events).
MAX_FUSE_MESSAGE = 200
_CHUNK = 65_536
# A run of digits, possibly broken by spaces, dots, dashes or brackets: a phone or card number.
_DIGIT_RUN = re.compile(r"\+?\d(?:[\s().-]{0,2}\d)*")
_DELAY_SECONDS = re.compile(r"\s*[0-9]{1,10}(?:\.[0-9]+)?\s*")


# --- the retry policy (one rule for both paths) --------------------------------------------------


def backoff_seconds(error: BaseException | None, attempt: int, backoff: float) -> float:
    """Retry-After when Fuse sends one (already capped), else exponential backoff with full jitter."""
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        return float(min(retry_after, MAX_BACKOFF))
    return random.uniform(0, min(MAX_BACKOFF, backoff * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class RetryPolicy:
    """Whether, when and for how long a request is tried: the same for sync and async requests.

    ``deadline`` (Unix time) ends it all: no retry is waited for that would start past it, and each
    request gets only the time left (at least ``MIN_REQUEST_SECONDS``).
    """

    safe_to_repeat: bool
    retries: int
    backoff: float
    deadline: float | None = None

    def should_retry(self, error: BaseException) -> bool:
        """A queue request is not "safe to repeat": only a 429 or a request that never left is retried."""
        if isinstance(error, FuseRateLimitError):
            return True
        if isinstance(error, FuseConnectionError):
            return self.safe_to_repeat or not error.reached_fuse
        return self.safe_to_repeat and isinstance(error, FuseServerError)

    def wait(self, error: BaseException, tries: int, now: float) -> float | None:
        """Seconds to wait before try ``tries + 1``, or None: give up and raise ``error``."""
        if tries > self.retries or not self.should_retry(error):
            return None
        seconds = backoff_seconds(error, tries, self.backoff)
        if self.deadline is not None and now + seconds >= self.deadline:
            return None
        return seconds

    def time_for_request(self, request_timeout: float, now: float) -> float:
        if self.deadline is None:
            return request_timeout
        return max(MIN_REQUEST_SECONDS, min(request_timeout, self.deadline - now))


# --- answers: status codes to errors, bodies to values (shared by sync and async) --------------


@dataclass(frozen=True)
class _Answer:
    """An answer as received: status, body (decompressed, bounded) and headers."""

    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        """The body as JSON; an XML or HTML answer is refused by its Content-Type, never parsed."""
        content_type = self.header("content-type")
        if protocol.unreadable_content_type(content_type):
            raise FuseResponseError(
                f"Fuse answered HTTP {self.status} in {_fuse_text((content_type or '')[:60])!r}, not JSON, "
                "although this provider always asks for application/json: is the connection's Base URL "
                "Fuse's API (not a web page or a proxy)?",
                status_code=self.status,
            )
        try:
            return json.loads(self.body) if self.body.strip() else None
        except (ValueError, RecursionError):
            raise FuseResponseError(
                f"Fuse answered HTTP {self.status} with a body that is not JSON.", status_code=self.status
            ) from None

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name), None)


_ERRORS_BY_STATUS: dict[int, type[FuseRemoteError]] = {
    400: FuseRequestError,
    401: FuseAuthError,
    403: FuseAuthError,
    404: FuseNotFoundError,
    405: FuseRequestError,
    409: FuseNotFoundError,
    429: FuseRateLimitError,
}
_MAY_BE_QUEUED = " The call may have been queued anyway: check Fuse before queueing it again."


def _check(answer: _Answer, method: str, path: str, queueing: bool) -> _Answer:
    """Raise the error class that fits the status, with Fuse's own message; else return the answer."""
    if answer.status < 300:
        return answer
    if answer.status < 400:
        redirect = FuseResponseError(
            f"Fuse answered HTTP {answer.status} (a redirect) to {method} {path}; redirects are not "
            f"followed: check the connection's Base URL.{_MAY_BE_QUEUED if queueing else ''}",
            status_code=answer.status,
        )
        redirect.call_may_be_queued = queueing
        raise redirect
    try:
        fuse_message = _fuse_text(protocol.error_message(answer.json()))
    except FuseResponseError:
        fuse_message = None
    cls = _ERRORS_BY_STATUS.get(answer.status) or (
        FuseServerError if answer.status >= 500 else FuseRemoteError
    )
    message = f"Fuse answered HTTP {answer.status} to {method} {path}: {fuse_message or 'no error message'}"
    may_be_queued = queueing and answer.status >= 500
    if may_be_queued:
        message += "." + _MAY_BE_QUEUED
    kwargs: dict[str, Any] = {"status_code": answer.status, "fuse_message": fuse_message}
    if cls in (FuseRateLimitError, FuseServerError):
        kwargs["retry_after"] = _retry_after(answer.header("retry-after"), time.time())
    error = cls(message, **kwargs)
    error.call_may_be_queued = may_be_queued
    raise error


def _fuse_text(message: str | None) -> str | None:
    """Fuse's own error text, shortened and with every run of 3+ digits masked: it may echo a number."""
    if message is None:
        return None

    def mask(match: re.Match[str]) -> str:
        run = match.group()
        return mask_phone(run) if sum(c.isdigit() for c in run) >= 3 else run

    text = _DIGIT_RUN.sub(mask, message[: MAX_FUSE_MESSAGE * 2])
    return text if len(text) <= MAX_FUSE_MESSAGE else text[: MAX_FUSE_MESSAGE - 3] + "..."


def _retry_after(value: str | None, now: float) -> float | None:
    """Retry-After as seconds (RFC 9110: delay seconds or an HTTP date), within 0..MAX_BACKOFF."""
    if value is None:
        return None
    if _DELAY_SECONDS.fullmatch(value):
        seconds = float(value)
    else:
        try:
            at = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError, OverflowError):
            return None  # unreadable: fall back to our own backoff
        if at.tzinfo is None:  # "-0000": UTC, said to be of unknown origin
            at = at.replace(tzinfo=timezone.utc)
        seconds = at.timestamp() - now
    return max(0.0, min(seconds, MAX_BACKOFF))


def _parsed(answer: _Answer, parse: Callable[[], T]) -> T:
    """Whatever Fuse answered ends as a value or a FuseError, never a bare parsing exception."""
    try:
        return parse()
    except FuseError:
        raise
    except (ValueError, TypeError, KeyError, RecursionError, OverflowError) as err:
        raise FuseResponseError(
            f"Fuse answered HTTP {answer.status} with a body this provider cannot read ({type(err).__name__}).",
            status_code=answer.status,
        ) from None


def _usable_call_id(call_id: str, answer: _Answer, count: str) -> str:
    try:
        return check_call_id(call_id)
    except FuseValidationError:
        raise FuseResponseError(
            f"Fuse accepted the queue request but answered a call id this provider cannot use "
            f"({_fuse_text(repr(call_id[:40]))}); {count} probably queued: check Fuse before queueing again.",
            status_code=answer.status,
        ) from None


def _masked_body(answer: _Answer) -> str:
    """The answer's body for an error message: shortened, numbers masked, never empty."""
    text = answer.body.decode(errors="replace").strip()
    return repr(_fuse_text(text)) if text else "an empty body"


def _json_of_accepted(answer: _Answer, count: str) -> Any:
    """The JSON of a 2xx answer to a queue request; an answer in XML or HTML may still have queued."""
    if protocol.unreadable_content_type(answer.header("content-type")):
        try:
            answer.json()
        except FuseResponseError as error:
            raise FuseResponseError(
                f"{error} {count} probably queued: check Fuse before queueing again.",
                status_code=answer.status,
            ) from None
    try:
        return answer.json()
    except FuseResponseError:
        return None  # Fuse accepted the request: the Link header may still name the call


def _call_id(answer: _Answer) -> str:
    body = _json_of_accepted(answer, "The call is")
    call_id = _parsed(answer, lambda: protocol.parse_queue_response(body, answer.header("link")))
    if call_id is None:
        raise FuseResponseError(
            f"Fuse accepted the queue request (HTTP {answer.status}) but its answer names no call_id and "
            "has no Link header; the call was probably queued: check Fuse before queueing it again. "
            f"Fuse answered {_masked_body(answer)}.",
            status_code=answer.status,
        )
    return _usable_call_id(call_id, answer, "the call is")


def _call_ids(answer: _Answer, expected: int) -> list[str] | None:
    """The ids of a bulk upload's calls in row order, or None: Fuse queued them without saying ids."""
    body = _json_of_accepted(answer, "The calls are") if answer.body.strip() else None
    if body is None and answer.body.strip():
        raise FuseResponseError(
            f"Fuse answered a bulk upload of {expected} calls with HTTP {answer.status} and a body that is "
            f"not JSON ({_masked_body(answer)}); the calls are probably queued: check Fuse before "
            "uploading again.",
            status_code=answer.status,
        )
    if protocol.answer_refuses(body):
        raise FuseResponseError(
            f"Fuse answered a bulk upload of {expected} calls with HTTP {answer.status} but says it "
            f"failed ({_masked_body(answer)}); some calls may be queued: check Fuse before uploading again.",
            status_code=answer.status,
        )
    call_ids = _parsed(answer, lambda: protocol.parse_bulk_queue_response(body))
    if call_ids is None:
        return None
    if len(call_ids) != expected:
        raise FuseResponseError(
            f"Fuse accepted a bulk upload of {expected} calls but answered {len(call_ids)} call ids; "
            "the calls are probably queued: check Fuse before uploading again.",
            status_code=answer.status,
        )
    return [_usable_call_id(call_id, answer, "the calls are") for call_id in call_ids]


def _call_details(answer: _Answer, call_id: str) -> CallDetails:
    return _parsed(answer, lambda: CallDetails.from_api(answer.json(), call_id=call_id))


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

    # --- the connection form on Airflow 3.1 (3.2+ reads get_provider_info's declarative form) ---

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Airflow 3.1's form: hidden fields, labels and placeholders, from ``get_provider_info``."""
        from airflow_provider_fuse.connection import connection_type

        declared = connection_type()["ui-field-behaviour"]
        return {key.replace("-", "_"): value for key, value in declared.items()}

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Airflow 3.1's extra fields, from the same extras as ``conn-fields`` (numbers in seconds as text).

        Airflow 3.1 accepts string, integer, password and boolean fields only, and its api-server
        stands in for wtforms and Flask-AppBuilder when they are not installed.
        """
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import IntegerField, PasswordField, StringField
        from wtforms.validators import Optional

        from airflow_provider_fuse.connection import EXTRAS, Extra

        def field(extra: Extra) -> Any:
            if extra.secret:  # no default: Airflow's form would show a default of a secret as "***"
                return PasswordField(
                    lazy_gettext(extra.label),
                    widget=BS3PasswordFieldWidget(),
                    description=extra.description,
                    validators=[Optional()],
                )
            return (IntegerField if extra.integer else StringField)(
                lazy_gettext(extra.label),
                widget=BS3TextFieldWidget(),
                description=extra.description,
                default=extra.default if extra.integer else str(extra.default),
                validators=[Optional()],
            )

        return {extra.name: field(extra) for extra in EXTRAS}

    def __init__(self, fuse_conn_id: str = DEFAULT_CONN_ID, *, backoff: float | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.fuse_conn_id = fuse_conn_id
        if backoff is not None:
            self.backoff = backoff
        self._async_settings: FuseSettings | None = None
        self._held: aiohttp.ClientSession | None = None  # hold_session()'s, while a wait holds it
        self._last_read: _StatusRead | None = None  # reused by the next poll of the same call

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

        from airflow_provider_fuse.hooks.deadline import DeadlineAdapter

        authorization = self.settings.authorization

        def authorize(request: requests.PreparedRequest) -> requests.PreparedRequest:
            request.headers["Authorization"] = authorization  # set here, so no ~/.netrc entry replaces it
            return request

        session = requests.Session()
        session.auth = authorize
        session.headers.update(_headers())
        for prefix in ("https://", "http://"):
            session.mount(prefix, DeadlineAdapter())
        return session

    def _policy(
        self,
        settings: FuseSettings,
        safe_to_repeat: bool,
        *,
        retries: int | None = None,
        deadline: float | None = None,
    ) -> RetryPolicy:
        limit = settings.retry_limit if retries is None else retries
        return RetryPolicy(safe_to_repeat, limit, self.backoff, deadline)

    # --- the API ---

    def queue_call(self, application_id: int | str, deployment_id: int | str, request: CallRequest) -> str:
        """Queue one call and return its id. Never repeated once it may have reached Fuse."""
        path = protocol.queue_path(*_deployment(application_id, deployment_id))
        form = request.to_form(self.settings.variables_field, self.settings.variables_format)
        answer = self._request("POST", path, self._policy(self.settings, False), files=_multipart(form))
        return _call_id(answer)

    def queue_calls(
        self, application_id: int | str, deployment_id: int | str, requests: Sequence[CallRequest]
    ) -> list[str] | None:
        """Queue many calls in one bulk_queue upload; returns their ids in the same order.

        None when Fuse accepted the upload (2xx) without answering ids in the assumed shape
        (``{"success": true}``, an empty body, a 202): the calls ARE queued, but cannot be tracked.
        The window, attempts, result_url and is_pci of the first request apply to every row (Fuse
        takes them once per upload); callers group requests that share them.
        """
        if not requests:
            return []
        path = protocol.bulk_queue_path(*_deployment(application_id, deployment_id))
        csv_data = protocol.build_bulk_csv((r.tel_uri, r.variables) for r in requests)
        files: dict[str, Any] = _multipart(requests[0].shared_form())
        files[protocol.BULK_CSV_FIELD] = ("calls.csv", csv_data, "text/csv")
        answer = self._request("POST", path, self._policy(self.settings, False), files=files)
        return _call_ids(answer, len(requests))

    def get_call(self, call_id: str | int, *, deadline: float | None = None) -> CallDetails:
        """The call's current details; retries and requests end by ``deadline`` (Unix time), if given."""
        path = status_path(call_id)
        answer = self._request("GET", path, self._policy(self.settings, True, deadline=deadline))
        return _call_details(answer, str(call_id))

    def cancel_pending_calls(self, application_id: int | str, deployment_id: int | str) -> None:
        """Cancel EVERY pending call of the deployment: Fuse has no per-call cancel."""
        path = protocol.cancel_path(*_deployment(application_id, deployment_id))
        self._request("DELETE", path, self._policy(self.settings, True))

    def test_connection(self) -> tuple[bool, str]:
        """Ask for a call that cannot exist: 404 proves the credentials, 401/403 rejects them."""
        where = "Fuse"
        try:
            where = f"Fuse at {self.settings.base_url}"
            policy = self._policy(self.settings, True, retries=0)
            self._request("GET", status_path(protocol.PROBE_CALL_ID), policy)
        except FuseAuthError as err:
            return (
                False,
                f"{where} rejected the credentials (HTTP {err.status_code}): {err.fuse_message or ''}",
            )
        except FuseError as err:
            if not isinstance(err, FuseNotFoundError):
                return False, f"{where}: {err}"
        return True, f"{where} is reachable and accepted the credentials."

    async def aget_call(self, call_id: str | int, *, deadline: float | None = None) -> CallDetails:
        """The call's current details, without blocking the event loop (for triggers).

        Retries and requests end by ``deadline`` (Unix time), if given, as in ``get_call``. Within
        ``hold_session()``, a wait's polls reuse its session, URL and retry policy, and an answer
        identical to the last poll's is not parsed again (a call waiting to be dialed, or ringing,
        answers the same for minutes): a poll costs about what the request costs
        (benchmarks/trigger_scale.py).
        """
        settings = self._async_settings or await self.asettings()
        read = self._last_read
        if read is None or read.key != (call_id, deadline, self.backoff):
            import yarl

            path = status_path(call_id)
            policy = self._policy(settings, True, deadline=deadline)
            key = (call_id, deadline, self.backoff)
            read = self._last_read = _StatusRead(key, path, yarl.URL(settings.base_url + path), policy)
        if self._held is not None:
            answer = await _aget_retried(self._held, settings, read)
        else:
            async with _shared_sessions.session(settings) as session:
                answer = await _aget_retried(session, settings, read)
        if read.last is not None and read.last[0] == answer.body:
            return read.last[1]  # the same bytes parse to the same (immutable) details
        details = _call_details(answer, str(call_id))
        read.last = (answer.body, details)
        return details

    @contextlib.asynccontextmanager
    async def hold_session(self) -> AsyncIterator[aiohttp.ClientSession]:
        """Keep the shared aiohttp session open across the polls of one wait (a trigger's ``run``)."""
        async with _shared_sessions.session(await self.asettings()) as session:
            held, self._held = self._held, session
            try:
                yield session
            finally:
                self._held = held

    # --- plumbing ---

    def _request(self, method: str, path: str, policy: RetryPolicy, **kwargs: Any) -> _Answer:
        tries = 0
        while True:
            tries += 1
            try:
                return self._send(method, path, policy, **kwargs)
            except FuseError as error:
                pause = policy.wait(error, tries, time.time())
                if pause is None:
                    raise
                time.sleep(pause)

    def exchange(self, method: str, path: str, *, files: Mapping[str, Any] | None = None) -> _Answer:
        """One request, never retried, whose answer comes back whatever its status: for ``fuse-probe``,
        which reports the shapes Fuse answers. A request that fails in transit raises FuseConnectionError."""
        policy = self._policy(self.settings, method == "GET", retries=0)
        return self._fetch(method, path, policy, **({"files": files} if files else {}))

    def _send(self, method: str, path: str, policy: RetryPolicy, **kwargs: Any) -> _Answer:
        return _check(self._fetch(method, path, policy, **kwargs), method, path, not policy.safe_to_repeat)

    def _fetch(self, method: str, path: str, policy: RetryPolicy, **kwargs: Any) -> _Answer:
        """One request, start to end within its time, redirects not followed, body bounded."""
        import requests
        from urllib3.exceptions import HTTPError

        from airflow_provider_fuse.hooks.deadline import time_limit

        settings = self.settings
        queueing = not policy.safe_to_repeat
        seconds = policy.time_for_request(settings.request_timeout, time.time())
        timeout = (min(settings.connect_timeout, seconds), seconds)
        try:
            with time_limit(seconds):
                response = self._session.request(
                    method,
                    settings.base_url + path,
                    timeout=timeout,
                    allow_redirects=False,
                    stream=True,
                    **kwargs,
                )
                try:
                    body = BoundedBody(response.headers.get("Content-Encoding"), f"{method} {path}")
                    for chunk in response.raw.stream(_CHUNK, decode_content=False):
                        body.feed(chunk)
                    answer = _Answer(response.status_code, body.finish(), dict(response.headers))
                except BaseException:
                    response.close()
                    raise
                response.raw.release_conn()  # read to the end: the connection goes back to the pool
        except (requests.RequestException, HTTPError, OSError) as err:
            raise _transport_error(err, method, path, queueing, *_requests_failure(err)) from None
        except FuseResponseError as err:
            raise _unreadable(err, queueing) from None
        return answer


def _headers() -> dict[str, str]:
    """Sent with every request, sync and async: always ask for JSON (Fuse can answer XML)."""
    return {"Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING, "User-Agent": USER_AGENT}


def _deployment(application_id: int | str, deployment_id: int | str) -> tuple[str, str]:
    return path_id("application_id", application_id), path_id("deployment_id", deployment_id)


def _multipart(form: Mapping[str, str]) -> dict[str, Any]:
    """Form fields as multipart/form-data parts (requests sends ``files`` as multipart)."""
    return {name: (None, value) for name, value in form.items()}


def _unreadable(err: FuseResponseError, queueing: bool) -> FuseResponseError:
    """An answer refused while it was read (too large, corrupt): a queue request may have queued the call."""
    error = FuseResponseError(f"{err}{_MAY_BE_QUEUED if queueing else ''}")
    error.call_may_be_queued = queueing
    return error


def _transport_error(
    err: BaseException, method: str, path: str, queueing: bool, never_reached: bool, timed_out: bool
) -> FuseConnectionError:
    """The error of a request that failed in transit; only one that never left may be sent again."""
    name = type(err).__name__
    if never_reached:
        message = f"{method} {path} could not connect to Fuse ({name})."
    else:
        message = f"{method} {path} {'timed out' if timed_out else 'failed'} before Fuse answered ({name})."
        if queueing:
            message += " The call may have been queued: check Fuse before queueing it again."
    return FuseConnectionError(message, reached_fuse=not never_reached)


def _requests_failure(err: BaseException) -> tuple[bool, bool]:
    """(the request provably never left this machine, it timed out), for requests and urllib3."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    reason: Any = err.args[0] if err.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    never_reached = isinstance(err, requests.ConnectTimeout) or isinstance(
        reason, (NewConnectionError, ConnectTimeoutError)
    )
    return never_reached, isinstance(err, (requests.Timeout, Urllib3Timeout, TimeoutError))


def _aiohttp_failure(err: BaseException) -> tuple[bool, bool]:
    """(the request provably never left this machine, it timed out), for aiohttp."""
    import aiohttp

    never_reached = isinstance(err, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError))
    return never_reached, isinstance(err, (asyncio.TimeoutError, aiohttp.ServerTimeoutError))


@dataclass
class _StatusRead:
    """What the polls of one call share: the checked path, its parsed URL, the retry policy, and the
    last answer with its details."""

    key: tuple[str | int, float | None, float]  # (call id, deadline, backoff) it was made for
    path: str
    url: yarl.URL  # parsed once: aiohttp would parse the text on every request
    policy: RetryPolicy
    last: tuple[bytes, CallDetails] | None = None


async def _aget_retried(session: aiohttp.ClientSession, settings: FuseSettings, read: _StatusRead) -> _Answer:
    """GET under the read's policy: retried on what may be retried, waits never past its deadline.

    A plain loop, not tenacity's AsyncRetrying: thousands of triggers poll through here; the sync
    twin is ``FuseHook._request``, both ruled by the same ``RetryPolicy``.
    """
    tries = 0
    while True:
        tries += 1
        try:
            answer = await _aget(session, settings, read.path, read.policy, read.url)
            return _check(answer, "GET", read.path, queueing=False)
        except FuseError as error:
            pause = read.policy.wait(error, tries, time.time())
            if pause is None:
                raise
            await asyncio.sleep(pause)


async def _aget(
    session: aiohttp.ClientSession,
    settings: FuseSettings,
    path: str,
    policy: RetryPolicy,
    url: yarl.URL | None = None,
) -> _Answer:
    """One GET, start to end within its time, redirects not followed, body bounded."""
    import aiohttp

    seconds = policy.time_for_request(settings.request_timeout, time.time())
    timeout = _client_timeout(seconds, min(settings.connect_timeout, seconds))
    try:
        target = settings.base_url + path if url is None else url
        async with session.get(target, timeout=timeout, allow_redirects=False) as response:
            encoding = response.headers.get("Content-Encoding")
            length = response.content_length
            if encoding is None and length is not None and length <= MAX_BODY_BYTES:
                # Plain, and within the cap: the parser reads no byte past Content-Length.
                return _Answer(response.status, await response.read(), response.headers)
            body = BoundedBody(encoding, f"GET {path}")
            async for chunk in response.content.iter_chunked(_CHUNK):
                body.feed(chunk)
            return _Answer(response.status, body.finish(), response.headers)
    except (aiohttp.ClientError, asyncio.TimeoutError) as err:
        raise _transport_error(err, "GET", path, False, *_aiohttp_failure(err)) from None


@lru_cache(maxsize=64)
def _client_timeout(total: float, connect: float) -> aiohttp.ClientTimeout:
    """One ClientTimeout per distinct limit (nearly always the connection's), not one per request."""
    import aiohttp

    return aiohttp.ClientTimeout(total=total, sock_connect=connect)


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

    return aiohttp.ClientSession(
        headers={**_headers(), "Authorization": settings.authorization},
        timeout=aiohttp.ClientTimeout(total=None),  # each request carries its own time limit
        connector=aiohttp.TCPConnector(limit=100),
        auto_decompress=False,  # BoundedBody inflates, with a ceiling
    )


_shared_sessions = _SessionPool()

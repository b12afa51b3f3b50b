"""The Fuse API's behaviour, independent of the HTTP transport: request in, reply out.

Order of checks per request: unknown path 404, injected refusal (429/500/503), Basic auth 401, wrong
method 405, deployment 404/409, validation 400, then the endpoint. Every request lands in the ledger.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from airflow_provider_fuse import protocol
from airflow_provider_fuse.testing.calls import Call
from airflow_provider_fuse.testing.clock import SimClock
from airflow_provider_fuse.testing.faults import Fault, Faults
from airflow_provider_fuse.testing.forms import parse_form
from airflow_provider_fuse.testing.ledger import Ledger, LedgerEntry
from airflow_provider_fuse.testing.rules import ApiError, parse_bulk_form, parse_queue_form
from airflow_provider_fuse.testing.store import CallStore

logger = logging.getLogger("airflow_provider_fuse.testing")

# What a "malformed" fault sends: a 200 whose JSON is cut off.
MALFORMED_BODY = b'{"call_id": "'
# What an "xml" fault sends, with the status of the real answer: Fuse's other answer format.
XML_BODY = b'<?xml version="1.0" encoding="UTF-8"?>\n<response><result>ok</result></response>\n'
#: How the simulator may answer a bulk upload (see FuseSimulator).
BULK_ANSWERS = ("ids", "success_only", "empty")


@dataclass(frozen=True)
class Answers:
    """The undocumented choices the simulator makes like one possible Fuse: how variables travel
    in a queue request, and what a bulk upload is answered."""

    variables_field: str = protocol.DEFAULT_VARIABLES_FIELD
    variables_format: str = protocol.DEFAULT_VARIABLES_FORMAT
    bulk_answer: str = BULK_ANSWERS[0]


@dataclass
class Reply:
    """What to send back; ``drop`` closes the connection instead, ``delay`` holds the answer back."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    delay: float = 0.0


@dataclass(frozen=True)
class _Route:
    endpoint: str
    method: str
    pattern: re.Pattern[str]


def _route(endpoint: str, method: str, path: Callable[..., str], *params: str) -> _Route:
    """A route whose pattern comes from protocol's own path function, so the paths cannot drift."""
    marks = [f"\x00{name}\x00" for name in params]
    regex = re.escape(path(*marks))
    for name, mark in zip(params, marks, strict=True):
        regex = regex.replace(re.escape(mark), f"(?P<{name}>[^/]+)")
    return _Route(endpoint, method, re.compile(regex))


ROUTES = (
    _route("queue", "POST", protocol.queue_path, "app", "dep"),
    _route("bulk_queue", "POST", protocol.bulk_queue_path, "app", "dep"),
    _route("cancel", "DELETE", protocol.cancel_path, "app", "dep"),
    _route("status", "GET", protocol.status_path, "call_id"),
)


def _json(status: int, body: Mapping[str, Any], headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return _json(status, protocol.error_body(message), headers)


def _refusal(fault: Fault) -> Reply:
    messages = {"429": "too many requests", "500": "database error", "503": "service unavailable"}
    headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
    return _error(int(fault.kind), messages[fault.kind], headers)


class FuseApp:
    """Routes, authenticates, validates and answers; the state lives in the :class:`CallStore`."""

    def __init__(
        self,
        *,
        base_url: str,
        login: str,
        password: str,
        store: CallStore,
        clock: SimClock,
        faults: Faults,
        ledger: Ledger,
        answers: Answers,
        schedule_callbacks: Callable[[list[Call]], None],
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._base_path = urlsplit(self.base_url).path
        self._credentials = f"{login}:{password}".encode()
        self._store = store
        self._clock = clock
        self._faults = faults
        self._ledger = ledger
        self._answers = answers
        self._schedule_callbacks = schedule_callbacks

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Answer one request (``headers`` keyed by lower-case name) and record it in the ledger."""
        path = unquote(urlsplit(target).path)
        route, params = self._match(path)
        endpoint = route.endpoint if route else "other"
        form: dict[str, str] = {}
        form_error: str | None = None
        try:
            form = parse_form(headers.get("content-type"), body)
        except ValueError as exc:
            form_error = str(exc)
        fault = self._faults.draw(endpoint) if route else None
        call_ids: list[str] = []
        if fault is not None and fault.refuses:
            reply = _refusal(fault)
        else:
            try:
                reply, call_ids = self._process(method, route, params, headers, form, form_error)
            except ApiError as exc:
                reply = _error(exc.status, exc.message)
        processed = 200 <= reply.status < 300
        if fault is not None and not fault.refuses:
            reply = self._spoil(reply, fault)
        self._ledger.record(
            LedgerEntry(
                time=time.time(),
                sim_time=self._clock.now(),
                method=method,
                path=path,
                endpoint=endpoint,
                status=None if reply.drop else reply.status,
                form=form,
                call_ids=call_ids,
                variables=self._variables(route, call_ids),
                fault=fault.kind if fault else None,
                processed=processed,
            )
        )
        return reply

    def _variables(self, route: _Route | None, call_ids: list[str]) -> list[dict[str, Any]]:
        """The variables read for each call a queue or bulk_queue request queued."""
        if route is None or route.endpoint not in ("queue", "bulk_queue"):
            return []
        calls = (self._store.get(call_id) for call_id in call_ids)
        return [dict(call.spec.variables) for call in calls if call is not None]

    def _match(self, path: str) -> tuple[_Route | None, dict[str, str]]:
        """The route of the path (each path has one) and the path's parameters."""
        if path.startswith(self._base_path + "/"):
            for route in ROUTES:
                match = route.pattern.fullmatch(path[len(self._base_path) :])
                if match:
                    return route, match.groupdict()
        return None, {}

    def _process(
        self,
        method: str,
        route: _Route | None,
        params: dict[str, str],
        headers: Mapping[str, str],
        form: dict[str, str],
        form_error: str | None,
    ) -> tuple[Reply, list[str]]:
        """The answer and the ids of the calls queued, canceled or asked about."""
        if route is None:
            raise ApiError(404, "not found")
        self._authenticate(headers.get("authorization"))
        if method != route.method:
            return _error(
                405, f"method {method} not allowed; use {route.method}", {"Allow": route.method}
            ), []
        if route.endpoint == "status":
            return self._status(params["call_id"]), [params["call_id"]]
        key = self._store.check_deployment(params["app"], params["dep"])
        if route.endpoint == "cancel":
            canceled = self._store.cancel(key)
            logger.info("canceled %d pending calls of deployment %s/%s", len(canceled), *key)
            self._schedule_callbacks(canceled)
            return Reply(202), [c.call_id for c in canceled]
        if form_error is not None:
            raise ApiError(400, form_error)
        if route.endpoint == "queue":
            answers = self._answers
            spec = parse_queue_form(form, answers.variables_field, answers.variables_format)
            calls = self._store.queue(key, [spec])
        else:
            calls = self._store.queue(key, parse_bulk_form(form))
        call_ids = [c.call_id for c in calls]
        self._schedule_callbacks(calls)
        if route.endpoint == "bulk_queue":
            logger.info("bulk-queued %d calls, ids %s to %s", len(calls), call_ids[0], call_ids[-1])
            if self._answers.bulk_answer == "success_only":
                return _json(200, protocol.bulk_success_only()), call_ids
            if self._answers.bulk_answer == "empty":
                return Reply(202), call_ids
            return _json(200, protocol.bulk_queue_response(call_ids)), call_ids
        _log_queued(calls[0])
        link = protocol.link_header(self.base_url, call_ids[0])
        return _json(200, protocol.queue_response(call_ids[0]), {"Link": link}), call_ids

    def _authenticate(self, authorization: str | None) -> None:
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise ApiError(401, "authentication required: HTTP Basic with your login and developer key")
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:
            given = b""
        if not hmac.compare_digest(given, self._credentials):
            raise ApiError(401, "invalid login or developer key")

    def _status(self, call_id: str) -> Reply:
        call = self._store.get(call_id)
        if call is None:
            return _error(404, "call not found")
        return _json(200, protocol.status_response(call.details_at(self._clock.time_of(call.anchor))))

    @staticmethod
    def _spoil(reply: Reply, fault: Fault) -> Reply:
        if fault.kind == "drop":
            return Reply(reply.status, drop=True)
        if fault.kind == "malformed":
            return Reply(200, MALFORMED_BODY, {"Content-Type": "application/json"})
        if fault.kind == "xml":
            return Reply(reply.status, XML_BODY, {"Content-Type": "application/xml; charset=utf-8"})
        if fault.kind == "no_id":
            return _json(200, protocol.bulk_success_only())
        reply.delay = fault.delay
        return reply


def _log_queued(call: Call) -> None:
    if logger.isEnabledFor(logging.INFO):
        from airflow_provider_fuse.phone import mask_phone

        logger.info(
            "queued call %s to %s: scripted %s, will end %s",
            call.call_id,
            mask_phone(call.spec.phone_number),
            call.outcome,
            call.timeline[-1].status,
        )

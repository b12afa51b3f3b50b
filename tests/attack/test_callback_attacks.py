"""Issue 16: attacks on the callback route (POST /fuse/callbacks/{token}), over a fake database.

Forged, altered and unknown tokens, a token of another task, oversized bodies (declared and chunked),
wrong content types, and what the logs could leak (the number, a PCI variable, the token itself in
the access log). Each is refused with nothing changed. The same attacks against a real API server:
tests/dags/test_callbacks_api_server.py.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

import pytest

from tests.callback_support import (
    NUMBER,
    PCI_VALUE,
    PURPOSE,
    SECRET,
    FakeDatabase,
    body,
    client,
    database,
    url,
)

__all__ = ["client", "database"]  # fixtures


def forged_tokens() -> list[Any]:
    other_task = replace(PURPOSE, task_id="another_task")
    return [
        pytest.param(url(secret="an-attacker-guess-" + "y" * 30), id="wrong-secret"),
        pytest.param(url().rsplit(".", 1)[0] + ".AAAA", id="forged-mac"),
        pytest.param(url(other_task).rsplit(".", 1)[0] + "." + url().rsplit(".", 1)[1], id="altered-purpose"),
        pytest.param(url(replace(PURPOSE, conn_id="no_such_conn")), id="unknown-connection"),
        pytest.param(url(other_task), id="unknown-task-instance"),
        pytest.param("/fuse/callbacks/not-a-token", id="garbage"),
    ]


@pytest.mark.parametrize("path", forged_tokens())
def test_a_forged_altered_or_unknown_token_gets_404_and_changes_nothing(
    client: Any, database: FakeDatabase, path: str
) -> None:
    before = database.snapshot()
    answer = client.post(path, json=body())
    assert (answer.status_code, answer.json()) == (404, {"detail": "Not Found"})
    assert database.snapshot() == before


def test_a_body_over_64_kb_gets_413_and_changes_nothing(client: Any, database: FakeDatabase) -> None:
    big = json.dumps(body(padding="x" * 70_000))
    answer = client.post(url(), content=big, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    assert database.xcom == {}


async def test_a_chunked_body_without_content_length_is_cut_at_64_kb(database: FakeDatabase) -> None:
    """Straight ASGI, as uvicorn delivers a chunked upload: the route stops reading past the limit."""
    from airflow_provider_fuse.plugins.app import create_app

    app = create_app()
    path = url().removeprefix("/fuse")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    received = 0
    answers: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1  # 8 MB in all if nobody stops reading
        return {"type": "http.request", "body": b"x" * 8192, "more_body": received < 1_000}

    async def send(message: dict[str, Any]) -> None:
        answers.append(message)

    await app(scope, receive, send)
    assert answers[0]["status"] == 413
    assert received <= 9, f"read {received} chunks of 8 KB"
    assert database.xcom == {}


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x"])
def test_a_wrong_content_type_gets_415_and_changes_nothing(
    client: Any, database: FakeDatabase, content_type: str
) -> None:
    answer = client.post(url(), content=json.dumps(body()), headers={"Content-Type": content_type})
    assert answer.status_code == 415
    assert database.xcom == {}


def test_the_log_names_no_number_no_pci_variable_and_no_token(
    client: Any, database: FakeDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = url()
    token = path.rsplit("/", 1)[1]
    client.post(path, json=body(card_number=PCI_VALUE, is_pci="1"))
    client.post(path, json=body(card_number=PCI_VALUE, is_pci="1"))
    client.post(url(secret="w" * 40), json=body())
    text = caplog.text
    assert "ended 'completed'" in text and "delivered again" in text  # the log says what happened
    assert "16***123" in text
    for secret in (NUMBER, PCI_VALUE, token, token.split(".")[1], SECRET):
        assert secret not in text
    assert PCI_VALUE not in json.dumps(list(database.xcom.values()))


def test_the_token_never_reaches_the_access_logs(database: FakeDatabase) -> None:
    """Airflow's access log reads the path after the response, uvicorn's at its start: both see ***."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from airflow_provider_fuse.plugins.app import create_app

    seen: list[str] = []

    class AccessLog:  # the two places access loggers read the shared scope
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            async def logged_send(message: Any) -> None:
                if message["type"] == "http.response.start":
                    seen.append(scope["path"] + scope["raw_path"].decode())
                await send(message)

            try:
                await self.app(scope, receive, logged_send)
            finally:
                seen.append(scope["path"] + scope["raw_path"].decode())

    root = FastAPI()
    root.mount("/fuse", create_app())
    root.add_middleware(AccessLog)
    path = url()
    with TestClient(root) as client:
        assert client.post(path, json=body()).status_code == 200
        assert client.post(path + "x", json=body()).status_code == 404
    assert len(seen) == 4
    assert all(line == "/fuse/callbacks/***/fuse/callbacks/***" for line in seen), seen


def test_a_replayed_callback_changes_nothing(client: Any, database: FakeDatabase) -> None:
    """Whoever saw a callback (and its token) and sends it again: no second record, wake-up or event."""
    assert client.post(url(), json=body()).json() == {"status": "recorded"}
    before = database.snapshot()
    for _ in range(3):
        assert client.post(url(), json=body()).json() == {"status": "duplicate"}
    assert database.snapshot() == before
    assert (len(database.resumed), len(database.asset_events)) == (1, 1)

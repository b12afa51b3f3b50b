"""POST /fuse/callbacks/{token}: what is recorded, what is refused, and that refusals change nothing."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import pytest

from airflow_provider_fuse.callbacks import HEAD_KEY, chunk_key
from tests.unit.plugins.conftest import NUMBER, PCI_VALUE, PURPOSE, SECRET, FakeDatabase, body, url

TI = FakeDatabase._ti(PURPOSE)


def entries(database: FakeDatabase) -> list[dict[str, Any]]:
    return list(database.xcom.get((TI, chunk_key(0))) or [])


def test_a_json_callback_is_recorded_masked_resumes_and_emits_one_asset_event(
    client: Any, database: FakeDatabase
) -> None:
    answer = client.post(url(), json=body())
    assert (answer.status_code, answer.json()) == (200, {"status": "recorded"})
    assert database.xcom[(TI, HEAD_KEY)] == {"count": 1}
    (entry,) = entries(database)
    assert entry["seq"] == 0
    assert entry["details"]["status"] == "completed"
    assert entry["details"]["phone_number"] == "16***123"
    assert NUMBER not in json.dumps(list(database.xcom.values()))
    assert [d.status for d in database.resumed] == ["completed"]
    assert [e["call"]["status"] for e in database.asset_events] == ["completed"]
    assert NUMBER not in json.dumps(database.asset_events)


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda c, u: c.post(u, json={"call_details": body()}), id="wrapped-json"),
        pytest.param(lambda c, u: c.post(u, json={"call_id": "77", "call_details": body()}), id="wrapped-id"),
        pytest.param(
            lambda c, u: c.post(
                u,
                content=urlencode({**body(), "events": json.dumps(body()["events"])}),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ),
            id="form",
        ),
        pytest.param(
            lambda c, u: c.post(
                u,
                content=urlencode({"call_details": json.dumps(body())}),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ),
            id="form-one-field",
        ),
        pytest.param(lambda c, u: c.post(u, content=json.dumps(body()).encode()), id="json-no-type"),
    ],
)
def test_every_callback_shape_records_the_same_details(
    client: Any, database: FakeDatabase, send: Any
) -> None:
    assert send(client, url()).status_code == 200
    (entry,) = entries(database)
    details = entry["details"]
    assert (details["status"], details["attempts"], details["duration"]) == ("completed", 1, 3)
    assert [e["event"] for e in details["events"]] == ["queued", "connected"]
    assert "***" in details["phone_number"]


def test_a_repeated_delivery_changes_nothing(client: Any, database: FakeDatabase) -> None:
    assert client.post(url(), json=body()).json() == {"status": "recorded"}
    before = database.snapshot()
    for _ in range(3):
        answer = client.post(url(), json=body())
        assert (answer.status_code, answer.json()) == (200, {"status": "duplicate"})
    assert database.snapshot() == before
    assert len(database.asset_events) == 1
    # another call's callback through the same address is a new entry
    assert client.post(url(), json=body(status="failed")).json() == {"status": "recorded"}
    assert database.xcom[(TI, HEAD_KEY)] == {"count": 2}


def test_entries_fill_chunks_in_order(client: Any, database: FakeDatabase, monkeypatch: Any) -> None:
    from airflow_provider_fuse.plugins import inbox

    monkeypatch.setattr(inbox, "CHUNK_SIZE", 2)
    for attempt in range(5):
        assert client.post(url(), json=body(attempts=str(attempt + 1))).status_code == 200
    assert database.xcom[(TI, HEAD_KEY)] == {"count": 5}
    chunks = [[e["seq"] for e in database.xcom[(TI, chunk_key(k))]] for k in range(3)]
    assert chunks == [[0, 1], [2, 3], [4]]


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


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"no": "status"}', b"\xff\xfe"])
def test_a_body_that_is_no_call_details_gets_400(client: Any, database: FakeDatabase, content: bytes) -> None:
    answer = client.post(url(), content=content, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
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

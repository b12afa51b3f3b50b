"""POST /fuse/callbacks/{token}: what is recorded, what is refused, and that refusals change nothing."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from airflow_provider_fuse.callback_token import phone_digest
from airflow_provider_fuse.callbacks import HEAD_KEY, chunk_key
from tests.callback_support import NUMBER, PURPOSE, SECRET, FakeDatabase, body, client, database, url

__all__ = ["client", "database"]  # fixtures

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
    # the national number Fuse writes, read in the connection's default region (US), keyed
    assert entry["phone_digest"] == phone_digest("+16175550123", SECRET)
    assert NUMBER not in json.dumps(list(database.xcom.values()))
    assert [d.status for d in database.resumed] == ["completed"]
    assert [e["call"]["status"] for e in database.asset_events] == ["completed"]
    assert NUMBER not in json.dumps(database.asset_events)


@pytest.mark.parametrize(
    ("written", "e164"),
    [
        ("'447911123456'", "+447911123456"),  # Fuse's sample form: international digits, no "+"
        ("'33612345678'", "+33612345678"),
        ("'+447911123456'", "+447911123456"),
        ("'16175550123'", "+16175550123"),  # the default region's country code and national number
    ],
)
def test_a_number_from_outside_the_default_region_gets_its_digest(
    client: Any, database: FakeDatabase, written: str, e164: str
) -> None:
    """A campaign matches callbacks without call ids by this digest: None would leave its rows untracked."""
    assert client.post(url(), json={**body(), "phone_number": written}).status_code == 200
    (entry,) = entries(database)
    assert entry["phone_digest"] == phone_digest(e164, SECRET)


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


def test_another_callback_through_the_same_address_is_a_new_entry(
    client: Any, database: FakeDatabase
) -> None:
    """A second call of the task (a redial) reports through the same address: recorded, not a duplicate."""
    assert client.post(url(), json=body()).json() == {"status": "recorded"}
    assert client.post(url(), json=body()).json() == {"status": "duplicate"}
    assert client.post(url(), json=body(status="failed")).json() == {"status": "recorded"}
    assert database.xcom[(TI, HEAD_KEY)] == {"count": 2}
    assert [e["details"]["status"] for e in entries(database)] == ["completed", "failed"]


def test_entries_fill_chunks_in_order(client: Any, database: FakeDatabase, monkeypatch: Any) -> None:
    from airflow_provider_fuse.plugins import inbox

    monkeypatch.setattr(inbox, "CHUNK_SIZE", 2)
    for attempt in range(5):
        assert client.post(url(), json=body(attempts=str(attempt + 1))).status_code == 200
    assert database.xcom[(TI, HEAD_KEY)] == {"count": 5}
    chunks = [[e["seq"] for e in database.xcom[(TI, chunk_key(k))]] for k in range(3)]
    assert chunks == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"no": "status"}', b"\xff\xfe"])
def test_a_body_that_is_no_call_details_gets_400(client: Any, database: FakeDatabase, content: bytes) -> None:
    answer = client.post(url(), content=content, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert database.xcom == {}

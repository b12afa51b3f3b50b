"""The callback token: what a callback is for, signed with the connection's callback_secret."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest

from airflow_provider_fuse.callback_token import (
    MAX_TOKEN_CHARS,
    CallbackPurpose,
    fingerprint,
    make_token,
    phone_digest,
    read_purpose,
    verify_token,
)

SECRET = "k" * 40
PURPOSE = CallbackPurpose("fuse_default", "1234", "5678", "reminders", "manual__2026-11-30", "call", 3)


def test_a_token_names_its_purpose_and_verifies_with_its_secret() -> None:
    token = make_token(PURPOSE, SECRET)
    assert read_purpose(token) == PURPOSE
    assert verify_token(token, SECRET) == PURPOSE
    assert "/" not in token and "?" not in token  # one path segment


@pytest.mark.parametrize("mac", ["\u00e9", "\u00e9" * 43, "\U0001f4de"])
def test_a_mac_with_characters_outside_ascii_does_not_verify(mac: str) -> None:
    """hmac.compare_digest raises on such text: the route would answer 500 instead of 404."""
    payload = make_token(PURPOSE, SECRET).split(".")[0]
    assert verify_token(f"{payload}.{mac}", SECRET) is None


def test_another_secret_does_not_verify() -> None:
    assert verify_token(make_token(PURPOSE, SECRET), "z" * 40) is None
    assert verify_token(make_token(PURPOSE, SECRET), "") is None


@pytest.mark.parametrize(
    "change", [{"task_id": "other"}, {"map_index": 4}, {"run_id": "manual__2026-12-01"}, {"conn_id": "x"}]
)
def test_a_token_altered_to_another_purpose_does_not_verify(change: dict[str, object]) -> None:
    """Another task's purpose with this token's MAC: refused."""
    mac = make_token(PURPOSE, SECRET).split(".")[1]
    payload = make_token(replace(PURPOSE, **change), SECRET).split(".")[0]  # type: ignore[arg-type]
    assert read_purpose(f"{payload}.{mac}") is not None
    assert verify_token(f"{payload}.{mac}", SECRET) is None


def test_a_re_encoded_payload_does_not_verify() -> None:
    """The MAC covers the payload's text: the same purpose written another way is refused."""
    mac = make_token(PURPOSE, SECRET).split(".")[1]
    fields = ["fuse_default", "1234", "5678", "reminders", "manual__2026-11-30", "call", 3]
    spaced = base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")
    assert read_purpose(f"{spaced}.{mac}") == PURPOSE
    assert verify_token(f"{spaced}.{mac}", SECRET) is None


@pytest.mark.parametrize(
    "token",
    [
        "",
        "nodot",
        "a.b.c",
        "!!!.abc",
        base64.urlsafe_b64encode(b'{"a": 1}').decode().rstrip("=") + ".mac",
        base64.urlsafe_b64encode(json.dumps(["c", "1", "2", "d", "r", "t", "0"]).encode()).decode() + ".m",
        base64.urlsafe_b64encode(json.dumps(["c", "1", "2", "d", "r", "", -1]).encode()).decode() + ".m",
        "a" * (MAX_TOKEN_CHARS + 1) + ".m",
    ],
)
def test_malformed_tokens_name_no_purpose(token: str) -> None:
    assert read_purpose(token) is None
    assert verify_token(token, SECRET) is None


def test_the_fingerprint_is_stable_keyed_and_confirms_no_number() -> None:
    details = {"status": "completed", "phone_number": "'16175550123'", "attempts": "1"}
    assert fingerprint(details, SECRET) == fingerprint(dict(reversed(details.items())), SECRET)
    assert fingerprint(details, SECRET) != fingerprint({**details, "attempts": "2"}, SECRET)
    assert fingerprint(details, SECRET) != fingerprint(details, "z" * 40)


def test_the_phone_digest_is_keyed_and_tells_numbers_apart() -> None:
    assert phone_digest("+16175550123", SECRET) == phone_digest("+16175550123", SECRET)
    assert phone_digest("+16175550123", SECRET) != phone_digest("+16175550124", SECRET)
    assert phone_digest("+16175550123", SECRET) != phone_digest("+16175550123", "z" * 40)
    assert "6175550123" not in phone_digest("+16175550123", SECRET)

"""The token of a ``result_url`` callback: what the callback is for, signed with the connection's secret.

A token is ``<purpose>.<mac>``: the purpose (Fuse connection id, application and deployment, and the
task instance: dag_id, run_id, task_id, map_index) as base64url JSON, then HMAC-SHA256 over it keyed
by the connection's ``callback_secret`` extra. The purpose travels in clear, so the API server knows
which connection's secret to check the MAC with, and which task instance to tell, without storing
anything per call; without the secret nobody can make a token, or change what one is for. Nothing
personal is in it (no number, no variable). Import-light: no Airflow.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import astuple, dataclass
from typing import Any

#: Signs tokens of this layout only: another use of the same secret can never produce a valid token.
_DOMAIN = b"airflow-provider-fuse result_url callback v1\n"
_FINGERPRINT_DOMAIN = b"airflow-provider-fuse callback fingerprint v1\n"
_PHONE_DOMAIN = b"airflow-provider-fuse callback phone v1\n"
#: Longer path segments are refused before any decoding (dag, run and task ids are at most 250 each).
MAX_TOKEN_CHARS = 2048


@dataclass(frozen=True)
class CallbackPurpose:
    """What one callback address is for: a Fuse deployment's calls placed by one task instance."""

    conn_id: str
    application_id: str
    deployment_id: str
    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1


def make_token(purpose: CallbackPurpose, secret: str) -> str:
    """The token for ``purpose``, keyed by the connection's ``callback_secret``."""
    payload = _b64(json.dumps(list(astuple(purpose)), separators=(",", ":")).encode())
    return f"{payload}.{_mac(payload, secret)}"


def read_purpose(token: str) -> CallbackPurpose | None:
    """What ``token`` claims to be for, NOT yet verified (to find the secret); None if malformed."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        return None
    payload, _ = token.split(".")
    try:
        fields = json.loads(_unb64(payload))
    except (ValueError, binascii.Error):
        return None
    if not (
        isinstance(fields, list)
        and len(fields) == 7
        and all(isinstance(f, str) and f for f in fields[:6])
        and type(fields[6]) is int
    ):
        return None
    return CallbackPurpose(*fields)


def verify_token(token: str, secret: str) -> CallbackPurpose | None:
    """The purpose of ``token`` when its MAC is right for ``secret``; None for anything forged or altered."""
    purpose = read_purpose(token)
    if purpose is None or not secret:
        return None
    payload, mac = token.split(".")
    # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, so a 500, not a 404).
    return purpose if hmac.compare_digest(mac.encode(), _mac(payload, secret).encode()) else None


def fingerprint(details: Mapping[str, Any], secret: str) -> str:
    """A keyed digest of a callback's call details: the same delivery twice gives the same value.

    Keyed, because the details hold the full number: an unkeyed hash stored beside the masked
    number would confirm it by brute force.
    """
    content = json.dumps(details, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hmac.new(secret.encode(), _FINGERPRINT_DOMAIN + content, hashlib.sha256).hexdigest()[:32]


def phone_digest(e164: str, secret: str) -> str:
    """A keyed digest of a number in E.164: how a campaign whose bulk answer carried no call ids
    matches callbacks to its rows (the record keeps only masked numbers, and masks collide)."""
    return hmac.new(secret.encode(), _PHONE_DOMAIN + e164.encode(), hashlib.sha256).hexdigest()[:32]


def _mac(payload: str, secret: str) -> str:
    return _b64(hmac.new(secret.encode(), _DOMAIN + payload.encode(), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or not text.replace("-", "").replace("_", "").isalnum() or not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

"""Issue 12, items 13 and 14 (non-connection part): what is stored or printed confirms no number.

* A campaign chunk's fingerprint sits in the task state store beside the masked numbers of XCom.
  Unkeyed (SHA-256 of the rows), a brute force over the hidden digits and a PCI variable recovered
  both in 53 s. It is now keyed with a secret the metadata database does not hold (derived from the
  connection's developer key), so recomputing it confirms nothing; a retry still resumes, and still
  refuses rows that changed.
* Reprs mask numbers and withhold post-dial digits and PCI variables; masks hide at least half the
  digits, so a short number leaves as many candidates as a long one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import datetime, timezone
from typing import Any

import pytest
import requests_mock as rm

from airflow_provider_fuse.campaign import plan_campaign
from airflow_provider_fuse.exceptions import FuseError
from airflow_provider_fuse.models import CallDetails, CallRequest
from airflow_provider_fuse.operators.fuse import QueueCallsOperator
from airflow_provider_fuse.phone import mask_phone, split_tel_uri
from tests.conftest import DEVELOPER_KEY, FUSE_URL, LOGIN
from tests.support import FakeStore, context, status_body

NUMBER = "+16175550123"
PCI = {"card_last4": "4242"}
BULK_URL = f"{FUSE_URL}/apps/1/2/bulk_queue"


def campaign(rows: list[dict[str, Any]], store: FakeStore, m: rm.Mocker) -> dict[str, Any]:
    m.post(BULK_URL, json={"call_ids": [str(n) for n in range(1, len(rows) + 1)]})
    operator = QueueCallsOperator(
        task_id="c", application_id=1, deployment_id=2, calls=rows, is_pci=True, wait_for_completion=False
    )
    return dict(operator.execute(context(store)))


def unkeyed(tel_uri: str, variables: dict[str, Any]) -> str:
    """The fingerprint as it used to be computed: anyone holding the database could recompute it."""
    encoded = json.dumps([[tel_uri, variables]], sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(encoded).hexdigest()


def candidates(masked: str) -> list[str]:
    """Numbers the mask allows, around the real one (a full brute force would try them all)."""
    head, tail = masked.split("***")
    hidden = len(NUMBER) - len(head) - len(tail)
    real = int(NUMBER[len(head) : len(NUMBER) - len(tail)])
    return [f"{head}{n:0{hidden}d}{tail}" for n in range(max(0, real - 500), real + 500)]


def test_the_stored_fingerprint_no_longer_confirms_the_number(fuse_conn: dict[str, str]) -> None:
    store = FakeStore()
    with rm.Mocker() as m:
        result = campaign([{"phone_number": NUMBER, "variables": PCI}], store, m)
    masked = result["calls"][0][2]
    (fingerprint,) = [v["fingerprint"] for k, v in store.data.items() if k.startswith("fuse_campaign_chunk_")]
    guesses = candidates(masked)
    assert NUMBER in guesses
    public_keys = [b"", LOGIN.encode(), b"fuse_default", FUSE_URL.encode()]
    for guess in guesses:
        content = json.dumps([[f"tel:{guess}", PCI]], sort_keys=True, separators=(",", ":")).encode()
        tried = [unkeyed(f"tel:{guess}", PCI)]
        tried += [hmac.new(key, content, hashlib.sha256).hexdigest() for key in public_keys]
        assert not [digest for digest in tried if digest.startswith(fingerprint)], f"{guess} is confirmed"
    stored = json.dumps(store.data)
    assert DEVELOPER_KEY not in stored and NUMBER[1:] not in stored and "4242" not in stored


def test_a_retry_still_resumes_and_still_refuses_changed_rows(fuse_conn: dict[str, str]) -> None:
    store = FakeStore()
    rows = [{"phone_number": NUMBER, "variables": PCI}]
    with rm.Mocker() as m:
        first = campaign(rows, store, m)
        again = campaign(rows, store, m)  # the retry: same rows, same connection
        assert m.call_count == 1, "the retry uploaded the chunk again"
        with pytest.raises(FuseError, match="other rows"):
            campaign([{"phone_number": NUMBER, "variables": {"card_last4": "4243"}}], store, m)
        assert m.call_count == 1
    assert first["calls"] == again["calls"]


def test_the_fingerprint_key_is_the_connections_own() -> None:
    """Derived from the developer key: the same key gives the same chunks in any process, another key not."""
    now = datetime(2026, 6, 2, tzinfo=timezone.utc)
    rows = [{"phone_number": NUMBER, "variables": PCI}]

    def fingerprint(secret: str) -> str:
        return plan_campaign(rows, {}, chunk_size=10, secret=secret, now=now).chunks[0].fingerprint

    assert fingerprint(DEVELOPER_KEY) == fingerprint(DEVELOPER_KEY) != fingerprint("dk-OTHER")
    assert DEVELOPER_KEY not in repr(plan_campaign(rows, {}, chunk_size=10, secret=DEVELOPER_KEY, now=now))


# --- item 14: reprs and masks ----------------------------------------------------------------------

SECRETS = ["6175550123", "8005550100", "77#", "zq-4242-zq"]


def assert_shows_nothing_secret(text: str) -> None:
    assert not [secret for secret in SECRETS if secret in text], text
    assert not re.search(r"\d{6}", text.replace("2026", "")), f"a long digit run: {text}"


def test_call_details_repr_masks_the_number() -> None:
    details = CallDetails.from_api(status_body("completed"), call_id="5")
    assert details.phone_number == "6175551234"
    assert "6175551234" not in repr(details) and "617555" not in repr(details)
    assert mask_phone("6175551234") in repr(details) and "completed" in repr(details)


def test_no_record_repr_shows_a_number_post_dial_digits_or_pci_variables() -> None:
    now = datetime(2026, 6, 2, tzinfo=timezone.utc)
    row = {
        "phone_number": f"tel:{NUMBER};ani=+18005550100;postd=77#",
        "variables": {"card": "zq-4242-zq"},
    }
    plan = plan_campaign([row], {"is_pci": True}, chunk_size=10, now=now)
    (chunk,) = plan.chunks
    request = CallRequest(
        NUMBER, caller_id="+18005550100", post_dial="77#", variables=row["variables"], now=now
    )
    for record in (plan, chunk, chunk.rows[0], request, split_tel_uri(row["phone_number"])):
        assert_shows_nothing_secret(repr(record))
    assert "card" not in repr(plan), "PCI variable names are withheld too"


@pytest.mark.parametrize("digits", range(8, 16))
def test_a_mask_hides_at_least_half_the_digits(digits: int) -> None:
    """``+2982***2345`` showed 8 of 9 digits: 10 candidates. Now at most half, at most 4 at an end."""
    number = "+" + "".join(str((3 * n + 2) % 10) for n in range(digits))
    head, tail = mask_phone(number).removeprefix("+").split("***")
    assert len(head) + len(tail) <= digits // 2
    assert len(head) <= 4 and len(tail) <= 4
    assert number.endswith(tail) and number[1:].startswith(head)


def test_a_short_number_leaves_as_many_candidates_as_a_long_one() -> None:
    faroe, boston = mask_phone("+298212345"), mask_phone(NUMBER)
    assert faroe.count("*") == 3 and sum(c.isdigit() for c in faroe) <= 4, faroe
    assert sum(c.isdigit() for c in boston) <= 5, boston

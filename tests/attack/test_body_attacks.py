"""Issue 12, item 10: no answer is read past MAX_BODY_BYTES (decompressed), in either path.

The answers are valid JSON that the provider would otherwise accept (a completed call, a call id),
padded far past the cap: plainly, and as a gzip bomb that inflates a ~16 KB body to 16 MB.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from airflow_provider_fuse.exceptions import FuseResponseError
from airflow_provider_fuse.hooks.fuse import FuseHook
from airflow_provider_fuse.models import CallRequest
from tests.attack.loopback import Loopback, Request, answer, connection

PADDING = 16 * 1024 * 1024
COMPLETED = {"call_details": {"status": "completed"}}
QUEUED = {"call_id": "42"}


def serving(payload: dict[str, Any], compress: bool) -> Loopback:
    """``payload`` padded to 16 MB of JSON; gzipped, about 16 KB on the wire."""
    data = json.dumps({**payload, "pad": "0" * PADDING}).encode()
    body = gzip.compress(data, compresslevel=9) if compress else data
    headers = {"Content-Type": "application/json", **({"Content-Encoding": "gzip"} if compress else {})}

    def respond(request: Request, sock: Any) -> None:
        sock.sendall(answer(200, body, headers))

    return Loopback(respond)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip-bomb"])
def test_a_huge_status_answer_is_refused_in_the_sync_path(
    monkeypatch: pytest.MonkeyPatch, compress: bool
) -> None:
    with serving(COMPLETED, compress) as fuse:
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection(fuse.url))
        with pytest.raises(FuseResponseError, match="larger than"):
            FuseHook(backoff=0).get_call("7")


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip-bomb"])
async def test_a_huge_status_answer_is_refused_in_the_async_path(
    monkeypatch: pytest.MonkeyPatch, compress: bool
) -> None:
    with serving(COMPLETED, compress) as fuse:
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection(fuse.url))
        with pytest.raises(FuseResponseError, match="larger than"):
            await FuseHook(backoff=0).aget_call("7")


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip-bomb"])
def test_a_huge_queue_answer_is_refused_and_may_have_queued_the_call(
    monkeypatch: pytest.MonkeyPatch, compress: bool
) -> None:
    with serving(QUEUED, compress) as fuse:
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection(fuse.url))
        with pytest.raises(FuseResponseError, match="larger than") as info:
            FuseHook(backoff=0).queue_call(1, 2, CallRequest("+16175550123"))
    assert info.value.call_may_be_queued
    assert len(fuse.requests) == 1

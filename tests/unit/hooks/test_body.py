"""BoundedBody: answers inflated and collected with a ceiling, in both HTTP paths."""

from __future__ import annotations

import gzip
import zlib

import pytest

from airflow_provider_fuse.exceptions import FuseResponseError
from airflow_provider_fuse.hooks.body import MAX_BODY_BYTES, BoundedBody

DATA = b'{"call_details": {"status": "completed"}}' * 100


@pytest.mark.parametrize(
    ("encoding", "wire"),
    [(None, DATA), ("identity", DATA), ("gzip", gzip.compress(DATA)), ("deflate", zlib.compress(DATA))],
)
def test_answers_are_read_whole_in_any_chunking(encoding: str | None, wire: bytes) -> None:
    for size in (1, 7, len(wire)):
        body = BoundedBody(encoding, "GET /outbound/1")
        for start in range(0, len(wire), size):
            body.feed(wire[start : start + size])
        assert body.finish() == DATA


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_a_body_one_byte_past_the_limit_is_refused(encoding: str | None) -> None:
    data = b"x" * 101
    body = BoundedBody(encoding, "GET /outbound/1", limit=100)
    with pytest.raises(FuseResponseError, match="larger than 100 bytes"):
        body.feed(gzip.compress(data) if encoding else data)
        body.finish()
    exact = BoundedBody(encoding, "GET /outbound/1", limit=101)
    exact.feed(gzip.compress(data) if encoding else data)
    assert exact.finish() == data


def test_a_bomb_is_never_inflated_much_past_the_limit() -> None:
    body = BoundedBody("gzip", "GET /outbound/1")
    bomb = gzip.compress(b"0" * (64 * MAX_BODY_BYTES))
    with pytest.raises(FuseResponseError, match="decompressed"):
        body.feed(bomb)
    assert sum(map(len, body._parts)) <= MAX_BODY_BYTES


@pytest.mark.parametrize(("encoding", "wire"), [("br", b"\x00"), ("gzip", b"not gzip at all")])
def test_unreadable_encodings_are_response_errors(encoding: str, wire: bytes) -> None:
    with pytest.raises(FuseResponseError, match=r"Content-Encoding|corrupt"):
        body = BoundedBody(encoding, "GET /outbound/1")
        body.feed(wire)
        body.finish()

"""Fuse's answers read with a ceiling: decompressed here, in both HTTP paths, never past ``MAX_BODY_BYTES``.

The HTTP clients' own decompression is switched off: one gzip bomb of a few hundred KB inflates to
hundreds of MB in a single call. Here every step of inflation is bounded by the room left.
"""

from __future__ import annotations

import zlib

from airflow_provider_fuse.exceptions import FuseResponseError

#: The most bytes (after decompression) read from one answer. A status answer is about 1 KB and a
#: bulk_queue answer for 5,000 calls under 100 KB; a larger body is refused, not read further.
MAX_BODY_BYTES = 1_048_576
#: What the provider asks Fuse to compress with (and all it can read besides plain bytes).
ACCEPT_ENCODING = "gzip, deflate"


class BoundedBody:
    """Collects an answer's body chunk by chunk; raises ``FuseResponseError`` past ``limit`` bytes."""

    def __init__(self, content_encoding: str | None, what: str, *, limit: int = MAX_BODY_BYTES):
        self._what = what
        self._limit = limit
        self._parts: list[bytes] = []
        self._size = 0
        encoding = (content_encoding or "identity").strip().lower()
        if encoding in ("identity", ""):
            self._inflater = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
        else:
            raise FuseResponseError(
                f"{what}: Fuse answered in an unsupported Content-Encoding {encoding[:40]!r}."
            )

    def feed(self, chunk: bytes) -> None:
        if self._inflater is None:
            self._add(chunk)
            return
        data = chunk
        while data:
            try:
                self._add(self._inflater.decompress(data, self._limit - self._size + 1))
            except zlib.error:
                raise FuseResponseError(f"{self._what}: Fuse's compressed answer is corrupt.") from None
            data = self._inflater.unconsumed_tail

    def finish(self) -> bytes:
        if self._inflater is not None:
            try:
                self._add(self._inflater.flush())
            except zlib.error:
                raise FuseResponseError(f"{self._what}: Fuse's compressed answer is corrupt.") from None
        return b"".join(self._parts)

    def _add(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            raise FuseResponseError(
                f"{self._what}: Fuse's answer is larger than {self._limit:,} bytes (decompressed); "
                "it was not read further."
            )
        self._parts.append(data)

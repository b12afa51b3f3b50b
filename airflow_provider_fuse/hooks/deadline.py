"""A whole-request time limit for requests: urllib3's timeouts bound each socket operation, not a request.

A server that drips one byte every 0.2 s never trips a read timeout, so a wait with a deadline could
outlive it many times over. A session with ``DeadlineAdapter`` mounted wraps every socket it opens:
inside ``time_limit(seconds)``, each send and receive (status line, headers and body alike) gets only
the time left, and the request times out (``requests.ReadTimeout``) once it is spent.
"""

from __future__ import annotations

import contextlib
import io
import socket
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3 import ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

#: Monotonic time by which the request under way (in this thread or task) must be done.
_ends_at: ContextVar[float | None] = ContextVar("fuse_request_ends_at", default=None)


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Every socket operation of a ``DeadlineAdapter`` session inside this block ends ``seconds`` from now."""
    token = _ends_at.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _ends_at.reset(token)


class _LimitedSocket:
    """A socket whose every send and receive is cut to the time left before the request's end."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._timeout = sock.gettimeout()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def settimeout(self, value: float | None) -> None:
        self._timeout = value
        self._sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._timeout

    def _arm(self) -> None:
        ends_at = _ends_at.get()
        if ends_at is None:
            self._sock.settimeout(self._timeout)
            return
        left = ends_at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request ran out of time")
        self._sock.settimeout(left if self._timeout is None else min(left, self._timeout))

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        self._arm()
        return self._sock.recv_into(buffer, nbytes, flags)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._arm()
        return self._sock.recv(bufsize, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._arm()
        self._sock.sendall(data, flags)

    def makefile(self, mode: str = "rb", buffering: int | None = None, **kwargs: Any) -> io.BufferedReader:
        """What http.client reads the answer from: its reads come back through ``recv_into`` above."""
        if mode != "rb" or kwargs:
            raise ValueError(f"unsupported makefile mode {mode!r}")
        raw = socket.SocketIO(self, "rb")  # type: ignore[arg-type]
        self._sock._io_refs += 1  # type: ignore[attr-defined]  # as socket.makefile does: closed with the file
        return io.BufferedReader(raw, buffering or io.DEFAULT_BUFFER_SIZE)


class _LimitedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock = _LimitedSocket(self.sock)


class _LimitedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.sock = _LimitedSocket(self.sock)


class _LimitedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _LimitedHTTPConnection


class _LimitedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _LimitedHTTPSConnection


_POOLS = {"http": _LimitedHTTPPool, "https": _LimitedHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections honour ``time_limit`` (direct, and through an HTTP proxy)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is ProxyManager:  # a SOCKS manager keeps its own pools
            manager.pool_classes_by_scheme = _POOLS
        return manager

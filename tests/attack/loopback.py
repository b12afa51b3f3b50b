"""Small hostile HTTP servers on 127.0.0.1, one thread per connection, for the attack suite.

Each server reads a request (request line, headers, a Content-Length body), records it, and hands the
socket to a ``respond`` function that writes whatever bytes the attack needs: a redirect, a body
dripped one byte at a time, an endless or compressed body. Nothing here ever leaves the machine.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

DRIP_PAUSE = 0.2


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Loopback:
    """A server on 127.0.0.1 answering every request with ``respond(request, socket)``."""

    respond: Callable[[Request, socket.socket], None]
    requests: list[Request] = field(default_factory=list)

    def __enter__(self) -> Loopback:
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                request = _read_request(self.request)
                if request is None:
                    return
                owner.requests.append(request)
                with contextlib.suppress(OSError):  # the client gave up: what most attacks check
                    owner.respond(request, self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            block_on_close = False
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"


def _read_request(sock: socket.socket) -> Request | None:
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Request(method, path, headers, body)


def answer(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
    """The bytes of a complete HTTP/1.1 answer."""
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def json_answer(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> bytes:
    return answer(
        status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
    )


def drip(data: bytes, pause: float = DRIP_PAUSE) -> Callable[[Request, Any], None]:
    """Write ``data`` one byte every ``pause`` seconds (never tripping a per-read timeout)."""

    def respond(request: Request, sock: Any) -> None:
        for byte in _bytes(data):
            sock.sendall(byte)
            time.sleep(pause)

    return respond


def _bytes(data: bytes) -> Iterator[bytes]:
    return (data[i : i + 1] for i in range(len(data)))


def connection(url: str, **extra: Any) -> str:
    """``AIRFLOW_CONN_FUSE_DEFAULT`` for a Fuse at ``url``/api."""
    return json.dumps(
        {
            "conn_type": "fuse",
            "host": f"{url}/api",
            "login": "ops@example.com",
            "password": "dk-SECRET-4242",
            "extra": {"retry_limit": 0, **extra},
        }
    )

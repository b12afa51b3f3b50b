"""The HTTP transport: the standard library's threading server, HTTP/1.1 with keep-alive.

One thread per connection is plenty for a loopback test server and holds well over 1,000 status
requests per second (see ``benchmarks/simulator_throughput.py``); everything Fuse-specific is in
:class:`~airflow_provider_fuse.testing.app.FuseApp`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from airflow_provider_fuse.testing.app import FuseApp, Reply

logger = logging.getLogger("airflow_provider_fuse.testing")


class SimulatorServer(ThreadingHTTPServer):
    """A loopback server answering through a :class:`FuseApp` (set once the port is known)."""

    daemon_threads = True
    # socketserver's default backlog of 5 drops SYNs under bursts of new connections (clients then
    # stall 1-7 s retransmitting): benchmarks open thousands at once.
    request_queue_size = 1024
    app: FuseApp

    def __init__(self, host: str, port: int) -> None:
        super().__init__((host, port), _Handler)
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def track(self, connection: socket.socket, is_open: bool) -> None:
        """Remember open connections: a stopped simulator must not answer on a kept-alive one."""
        with self._connections_lock:
            if is_open:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def stop(self) -> None:
        """Stop accepting, cut slow answers short and close the kept-alive connections."""
        self.stopping.set()
        self.shutdown()
        self.server_close()
        with self._connections_lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY the client's delayed ACK adds
    # 40 ms to every keep-alive request.
    disable_nagle_algorithm = True
    server: SimulatorServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        super().finish()

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        body = self._read_body()
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.app.handle(self.command, self.path, headers, body)
        if reply.drop:
            self.close_connection = True
            return
        if reply.delay and self.server.stopping.wait(reply.delay):
            self.close_connection = True
            return
        self._send(reply)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers, up to the blank line
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, reply: Reply) -> None:
        self.send_response_only(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)
        self.log_request(reply.status, len(reply.body))

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

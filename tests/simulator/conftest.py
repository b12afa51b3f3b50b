"""A simulator on a frozen clock (only ``sim.advance`` moves time), a client and a result_url receiver."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from airflow_provider_fuse import protocol
from airflow_provider_fuse.testing import FuseSimulator

T0 = 1_700_000_000
LOGIN, PASSWORD = "dev@example.com", "dev-key"
NUMBER = "+16175551234"
# How long to wait for a background thread's effect (a callback, a subprocess answering): milliseconds
# on a quiet machine, so a bound far beyond what a busy one needs; it only limits how long a failure takes.
PATIENCE = 60.0


@dataclass
class FuseClient:
    """Requests against the live simulator, as a Fuse client would send them."""

    sim: FuseSimulator
    session: requests.Session

    def post(
        self, path: str, fields: dict[str, str], encoding: str = "multipart", **kwargs: Any
    ) -> requests.Response:
        if encoding == "multipart":
            files = {name: (None, value) for name, value in fields.items()}
            return self.session.post(self.sim.url + path, files=files, **kwargs)
        return self.session.post(self.sim.url + path, data=fields, **kwargs)

    def queue(
        self, encoding: str = "multipart", app: int | str = 1, dep: int | str = 2, **fields: Any
    ) -> requests.Response:
        form = {name: str(value) for name, value in fields.items()}
        return self.post(protocol.queue_path(app, dep), form, encoding)

    def queue_id(self, **fields: Any) -> str:
        answer = self.queue(**{"phone_number": NUMBER, **fields})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["call_id"])

    def bulk(self, csv_text: str, app: int = 1, dep: int = 2, **fields: Any) -> requests.Response:
        return self.session.post(
            self.sim.url + protocol.bulk_queue_path(app, dep),
            files={protocol.BULK_CSV_FIELD: ("calls.csv", csv_text.encode(), "text/csv")},
            data={name: str(value) for name, value in fields.items()},
        )

    def cancel(self, app: int = 1, dep: int = 2) -> requests.Response:
        return self.session.delete(self.sim.url + protocol.cancel_path(app, dep))

    def details(self, call_id: str) -> dict[str, Any]:
        answer = self.session.get(self.sim.url + protocol.status_path(call_id))
        assert answer.status_code == 200, answer.text
        details = protocol.parse_status_response(answer.json())
        assert details is not None
        return dict(details)

    def at(self, call_id: str, sim_time: float) -> dict[str, Any]:
        """The call's details once the simulated clock has reached ``sim_time``."""
        self.sim.advance(max(0.0, sim_time - self.sim.now()))
        return self.details(call_id)


def session(login: str = LOGIN, password: str = PASSWORD) -> requests.Session:
    client = requests.Session()
    client.auth = (login, password)
    client.trust_env = False  # never through a proxy from the environment
    return client


@pytest.fixture
def sim() -> Iterator[FuseSimulator]:
    with FuseSimulator(clock=lambda: float(T0)) as simulator:
        yield simulator


@pytest.fixture
def fuse(sim: FuseSimulator) -> Iterator[FuseClient]:
    with session() as client:
        yield FuseClient(sim, client)


def wait_until(predicate: Callable[[], Any], timeout: float = PATIENCE) -> Any:
    """Wait for a background thread's effect (a callback delivery), failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the simulator")
        time.sleep(0.01)
    return result


class Receiver(ThreadingHTTPServer):
    """A tiny result_url endpoint: keeps each POST's path, content type and JSON body."""

    daemon_threads = True

    def __init__(self, status: int = 200) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.status = status
        self.received: queue.Queue[tuple[str, str, Any]] = queue.Queue()

    def url(self, path: str = "/result") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def next(self) -> tuple[str, str, Any]:
        return self.received.get(timeout=PATIENCE)


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.put((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()

"""The FuseSimulator in its own process, with a JSON control port for the multi-process suite.

The package's CLI (``python -m airflow_provider_fuse.testing.cli``) serves one simulator and offers no
way to reach its ledger or inject faults from another process. This host serves several named
simulators (one per scenario, each on its own fixed port, so that scenarios run side by side without
sharing faults or ledgers) and answers a small control API on a separate loopback port:

    GET  /health                  {"sims": {name: port}}
    GET  /<name>/ledger           the ledger, as a list of JSON objects; ``?endpoint=status&since=T``
                                  keeps one endpoint's entries, those answered at or after real time T
    GET  /<name>/now              {"now": simulated Unix time}
    GET  /<name>/calls            {call_id: [status, attempts]} now, of every call queued
    POST /<name>/faults           {"endpoint", "kind", "count", "fraction", "retry_after", "delay"}
    POST /<name>/clear_faults
    POST /<name>/script           {"number", "outcome"}, or {"numbers": [...], "outcome"}
    POST /<name>/hold | /release  stop the simulator's clock (every call stays where it is, however
                                  long a test takes to get somewhere), then let it run again: each
                                  call catches up at once with the time it missed
    POST /<name>/stop | /start    stop or restart the simulator on the same port (state and ledger kept)
    POST /<name>/outage           {"seconds"}: stop now, start again after that many seconds

Run as a script: ``python tests/stack/simhost.py --control-port N --speed S --sim NAME=PORT ...``.
It exits 0 on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_fuse.testing.simulator import DEFAULT_PASSWORD, FuseSimulator


class HeldClock:
    """The real clock, which a test can stop and let go (``FuseSimulator(clock=...)``).

    Held, it reads the instant it was held; let go, real time again, so the simulated time it missed
    passes at once. It never moves backwards.
    """

    def __init__(self) -> None:
        self.held_at: float | None = None

    def __call__(self) -> float:
        held_at = self.held_at
        return time.time() if held_at is None else held_at

    def hold(self) -> None:
        if self.held_at is None:
            self.held_at = time.time()

    def release(self) -> None:
        self.held_at = None


class SimHost:
    """Named simulators and what the control API does to them."""

    def __init__(self, ports: dict[str, int], speed: float, password: str) -> None:
        self.clocks = {name: HeldClock() for name in ports}
        self.sims = {
            name: FuseSimulator(speed=speed, port=port, password=password, clock=self.clocks[name])
            for name, port in ports.items()
        }
        self._lock = threading.Lock()

    def start(self) -> None:
        for sim in self.sims.values():
            sim.start()

    def stop(self) -> None:
        with self._lock:
            for sim in self.sims.values():
                sim.stop()

    def handle(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """Answer one control request: (HTTP status, JSON body)."""
        url = urlsplit(path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        parts = [p for p in url.path.split("/") if p]
        if method == "GET" and parts == ["health"]:
            return 200, {"sims": {name: sim.port for name, sim in self.sims.items()}}
        if len(parts) != 2 or parts[0] not in self.sims:
            return 404, {"error": f"unknown control path {path!r}"}
        name, action = parts
        sim = self.sims[name]
        if method == "GET" and action == "ledger":
            since = float(query.get("since", "-inf"))
            entries = sim.requests(query["endpoint"]) if "endpoint" in query else sim.ledger
            return 200, [dataclasses.asdict(entry) for entry in entries if entry.time >= since]
        if method == "GET" and action == "now":
            return 200, {"now": sim.now()}
        if method == "GET" and action == "calls":
            queued = sim.requests("queue") + sim.requests("bulk_queue")
            return 200, {i: _state(sim, i) for i in sorted({i for entry in queued for i in entry.call_ids})}
        if method != "POST":
            return 405, {"error": "use POST"}
        if action == "faults":
            sim.faults.inject(**body)
        elif action == "clear_faults":
            sim.faults.clear()
        elif action == "script":
            for number in body.get("numbers") or [body["number"]]:
                sim.script(number, body["outcome"])
        elif action == "hold":
            self.clocks[name].hold()
        elif action == "release":
            self.clocks[name].release()
        elif action == "stop":
            with self._lock:
                sim.stop()
        elif action == "start":
            with self._lock:
                sim.start()
        elif action == "outage":
            with self._lock:
                sim.stop()
            threading.Thread(
                target=self._restart_later, args=(sim, float(body["seconds"])), daemon=True
            ).start()
        else:
            return 404, {"error": f"unknown action {action!r}"}
        return 200, {"ok": True}

    def _restart_later(self, sim: FuseSimulator, seconds: float) -> None:
        time.sleep(seconds)
        with self._lock:
            sim.start()


def _state(sim: FuseSimulator, call_id: str) -> list[Any]:
    """``[status, attempts]`` of a call now, as its status request would report them."""
    last = sim.call(call_id).events_at(sim.now(call_id))[-1]
    return [last.status, last.attempts]


def _handler(host: SimHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve()

        do_POST = do_GET

        def _serve(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                status, answer = host.handle(self.command, self.path, json.loads(raw) if raw.strip() else {})
            except (ValueError, TypeError, KeyError, RuntimeError) as exc:
                status, answer = 400, {"error": f"{type(exc).__name__}: {exc}"}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _sim_arg(text: str) -> tuple[str, int]:
    name, sep, port = text.partition("=")
    if not sep or not name.isidentifier() or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=PORT, got {text!r}")
    return name, int(port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--speed", type=float, default=600.0)
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help="the developer key to accept")
    parser.add_argument("--sim", type=_sim_arg, action="append", required=True, metavar="NAME=PORT")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    host = SimHost(dict(args.sim), args.speed, args.password)
    host.start()
    control = ThreadingHTTPServer(("127.0.0.1", args.control_port), _handler(host))
    control.daemon_threads = True
    threading.Thread(target=control.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    print(f"simhost ready: control 127.0.0.1:{args.control_port}, sims {dict(args.sim)}", flush=True)
    try:
        stop.wait()
    finally:
        control.shutdown()
        control.server_close()
        host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

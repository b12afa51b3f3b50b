"""Status requests per call, and the delay from a call's end to its wait's end, with and without
``result_url="airflow"`` callbacks: one call, and a 10,000-call campaign (issue 16).

Everything in this process: the FuseSimulator POSTs each call's final details to its result_url the
way Fuse does; the plugin's own app (uvicorn, in a thread) receives them and records them with the
plugin's own code, into memory instead of the metadata database; the operators run up to their
deferral, and the triggers run to their event, reading XCom and the record from memory as a
triggerer's supervisor would serve them.

The single call's "callbacks" arm models what the API server does for a deferred call: it resumes the
task at once (the wait ends when the plugin records the callback). The trigger alone would notice at
its next look (``poll_interval``). Airflow's own share after that (scheduler, then a worker runs
``execute_complete``: seconds) is the same with or without callbacks and is not counted here; the
stack suite (``make test-e2e``) shows the whole path in a multi-process Airflow.

    .venv/bin/python benchmarks/callbacks.py                 # one call and 10,000 calls, ~3 min
    .venv/bin/python benchmarks/callbacks.py --calls 1000    # a smaller campaign

Targets (issue 16): 0 status requests per call when every callback arrives.

The simulator delivers callbacks one at a time from one thread, so a 10,000-call campaign's last
callback lands well after its last call ended: the last column shows the wait's own share.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

SECRET = "benchmark-callback-secret-0123456789abcdef"
AREAS = ("617", "212", "415", "312", "202", "305", "713", "206", "404", "503", "602", "720")


def number(n: int) -> str:
    """Distinct valid numbers, 10,000 per area code."""
    return f"+1{AREAS[n // 10_000]}555{n % 10_000:04d}"


class TI:
    """The task instance: its XComs in memory (what the triggerer's supervisor would serve)."""

    dag_id, task_id, run_id, map_index = "bench", "call", "manual", -1

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


class Memory:
    """The plugin's Records over a dict (one task instance); ``resumed`` is set as the API server
    would resume a deferred single call."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.resumed = threading.Event()
        self.last_callback = 0.0  # when the plugin recorded the latest callback (real Unix time)
        self.lock = threading.Lock()

    def task_instance(self, purpose: Any) -> Any:
        return purpose

    def get(self, purpose: Any, key: str) -> Any:
        return self.values.get(key)

    def set(self, purpose: Any, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))

    def resume(self, ti: Any, details: Any) -> bool:
        self.last_callback = time.time()
        self.resumed.set()  # a deferred single call: the API server resumes it at once
        return True

    def emit_asset_event(self, purpose: Any, ti: Any, details: Any) -> bool:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def plugin(memory: Memory) -> Iterator[str]:
    """The plugin's app on a loopback port, recording into ``memory``; yields its base URL."""
    import uvicorn
    from fastapi import FastAPI

    from airflow_provider_fuse.plugins import PLUGIN_URL_PREFIX, app, inbox

    @contextmanager
    def database() -> Iterator[Memory]:
        yield memory

    inbox.database = database
    root = FastAPI()
    root.mount(PLUGIN_URL_PREFIX, app.create_app())  # as the API server mounts it
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(root, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def deferred(operator: Any, ti: TI) -> Any:
    """The trigger ``operator`` defers with (it queues the call(s) first)."""
    from airflow.providers.common.compat.sdk import TaskDeferred

    try:
        operator.execute({"ti": ti})
    except TaskDeferred as deferral:
        return deferral.trigger
    raise RuntimeError("the operator did not defer")


def serve(ti: TI, memory: Memory) -> None:
    """The triggerer's supervisor: the task's XComs, and the plugin's record."""
    from airflow_provider_fuse import callbacks
    from airflow_provider_fuse.triggers import fuse as triggers

    async def read_xcom(where: Any, key: str) -> Any:
        return ti.xcom.get(key)

    async def aget(task_instance: Any, key: str) -> Any:
        return memory.values.get(key)

    triggers.read_xcom = read_xcom
    callbacks._aget = aget  # type: ignore[assignment]


async def first_event(trigger: Any, memory: Memory | None = None) -> tuple[dict[str, Any], float]:
    """The trigger's event and when the wait ended: at the event, or (``memory``) when the API server
    resumed the task, whichever came first."""

    async def event() -> dict[str, Any]:
        async for found in trigger.run():
            return dict(found.payload)
        return {}

    events = asyncio.ensure_future(event())
    waiters: set[asyncio.Future[Any]] = {events}
    if memory is not None:
        waiters.add(asyncio.ensure_future(asyncio.to_thread(memory.resumed.wait, 600)))
    done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    ended = time.time()
    for waiter in pending:
        waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*pending, return_exceptions=True)
    return (events.result() if events in done else {}), ended


def ended_at(sim: Any, call_id: str, speed: float) -> float:
    """When the call ended, in real Unix time (the simulator's clock runs ``speed`` times faster)."""
    return time.time() - (sim.now(call_id) - sim.call(call_id).terminal_at) / speed


def single_call(sim: Any, callbacks: bool, poll_interval: float, speed: float) -> dict[str, Any]:
    from airflow_provider_fuse.operators.fuse import QueueCallOperator

    memory = Memory()
    with plugin(memory) as base_url:
        os.environ["AIRFLOW__API__BASE_URL"] = base_url
        ti = TI()
        serve(ti, memory)
        before = len(sim.requests("status"))
        operator = QueueCallOperator(
            task_id="call",
            application_id=1,
            deployment_id=2,
            phone_number=number(0),
            result_url="airflow",  # every arm: the callback's arrival is the call's end
            deferrable=True,
            poll_interval=poll_interval,
            timeout=3600,
        )
        trigger = deferred(operator, ti)
        if not callbacks:  # what a task without result_url="airflow" waits with
            trigger.callbacks_until = trigger.callbacks_ti = None
        else:
            trigger.task_instance = ti
        _, ended = asyncio.run(first_event(trigger, memory if callbacks else None))
        requests = len(sim.requests("status")) - before
    return {
        "requests": requests,
        "calls": 1,
        "delay": ended - ended_at(sim, trigger.call_id, speed),
        "after_callback": ended - memory.last_callback,
    }


def campaign(
    sim: Any, calls: int, callbacks: bool, poll_interval: float, rate: float, speed: float
) -> dict[str, Any]:
    from airflow_provider_fuse.operators.fuse import QueueCallsOperator

    memory = Memory()
    with plugin(memory) as base_url:
        os.environ["AIRFLOW__API__BASE_URL"] = base_url
        ti = TI()
        serve(ti, memory)
        before = len(sim.requests("status"))
        operator = QueueCallsOperator(
            task_id="call",
            application_id=1,
            deployment_id=2,
            calls=[{"phone_number": number(n)} for n in range(calls)],
            result_url="airflow",
            chunk_size=5000,
            deferrable=True,
            poll_interval=poll_interval,
            max_requests_per_second=rate,
            timeout=3600,
        )
        trigger = deferred(operator, ti)
        if not callbacks:
            trigger.callbacks_until = None
        event, ended = asyncio.run(first_event(trigger))
        requests = len(sim.requests("status")) - before
        last = max(ended_at(sim, str(call[0]), speed) for call in event["calls"])
    assert event.get("status") == "done", event.get("message")
    return {
        "requests": requests,
        "calls": calls,
        "delay": ended - last,
        "after_callback": ended - memory.last_callback,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=10_000, help="calls in the campaign")
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    parser.add_argument("--poll-interval", type=float, default=10.0, help="the single call's, seconds")
    parser.add_argument("--campaign-poll-interval", type=float, default=30.0, help="seconds")
    parser.add_argument("--rate", type=float, default=500.0, help="the campaign's status requests per second")
    args = parser.parse_args(argv)

    from airflow_provider_fuse.testing import FuseSimulator

    rows = []
    with FuseSimulator(speed=args.speed) as sim:
        connection = {
            "conn_type": "fuse",
            "host": sim.url,
            "login": sim.login,
            "password": sim.password,
            "extra": {"callback_secret": SECRET},
        }
        os.environ["AIRFLOW_CONN_FUSE_DEFAULT"] = json.dumps(connection)  # the plugin checks tokens with it
        for callbacks in (False, True):
            rows.append(("one call", callbacks, single_call(sim, callbacks, args.poll_interval, args.speed)))
        for callbacks in (False, True):
            figures = campaign(sim, args.calls, callbacks, args.campaign_poll_interval, args.rate, args.speed)
            rows.append((f"campaign of {args.calls:,}", callbacks, figures))
    print(
        f"\nFuse simulator at {args.speed:g}x; single call poll_interval {args.poll_interval:g} s, campaign"
    )
    print(f"poll_interval {args.campaign_poll_interval:g} s at up to {args.rate:g} status requests/s.\n")
    print(
        "| wait | result_url | status requests per call | (last) call's end to the wait's end | last callback recorded to the wait's end |"
    )
    print("|---|---|---:|---:|---:|")
    for what, callbacks, figures in rows:
        per_call = figures["requests"] / figures["calls"]
        how = '"airflow"' if callbacks else "none (polling)"
        after = f"{figures['after_callback']:.2f} s" if callbacks else "-"
        print(f"| {what} | {how} | {per_call:.2f} | {figures['delay']:.2f} s | {after} |")
    zero = all(f["requests"] == 0 for _, callbacks, f in rows if callbacks)
    print(f"\nTarget: 0 status requests per call when every callback arrives: {'met' if zero else 'MISSED'}.")
    return 0 if zero else 1


if __name__ == "__main__":
    sys.exit(main())

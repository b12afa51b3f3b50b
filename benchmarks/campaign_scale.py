"""A 100,000-call campaign against the simulator: bulk upload + one FuseCallsTrigger vs the naive way.

Each approach gets a fresh ``fuse-simulator`` (its own process) and two worker processes, as in
Airflow: a *queue* worker (the task) and a *track* worker (the triggerer), so that the tracker's CPU
time and peak RSS are its own.

* ``campaign``: QueueCallsOperator validates the rows and uploads them in chunks of 5,000 through
  bulk_queue, then defers; the track worker rebuilds its FuseCallsTrigger from ``serialize()`` (as
  a triggerer does), reads the call ids from the task's XComs (handed over with the kwargs, as the
  triggerer's supervisor would serve them) and runs it to its one event. It then builds the task's
  result from that event, as ``execute_complete`` does, after its peak RSS was read.
* ``naive``: the same calls queued with one queue request each, then one FuseCallTrigger per call,
  all in one event loop (a triggerer holding that many deferred tasks).

Time is scaled: the simulator runs ``--speed`` times faster than real time (default 60), so the
production settings are scaled alike: a poll interval of 60 s becomes 1 s, the default ceiling of
10 status requests a second becomes 600. Callees: 70 % answer, 15 % are busy once, 10 % never
answer (3 attempts, 5 minutes apart), 5 % reject. HTTP requests are counted in the workers.

    .venv/bin/python benchmarks/campaign_scale.py --calls 100000    # 100,000 vs 10,000 the naive way
    .venv/bin/python benchmarks/campaign_scale.py --calls 10000 --naive-calls 1000
    .venv/bin/python benchmarks/campaign_scale.py --quick           # 1,000 vs 200, smoke run

The naive side defaults to at most 10,000 calls (``--naive-calls``): 100,000 single queue requests
and triggers would take most of an hour and say nothing the 10,000 do not.

Targets (issue 15): 100,000 calls queued in at most 100 requests; at most 1.2 status requests per
call on average; the tracker under 300 MB peak RSS; the trigger's kwargs a few KB at most and the
task's result under 1 MB. The tracker's CPU time is printed, not judged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULT_MARK = "CAMPAIGN_SCALE_RESULT "
TERMINAL = ("completed", "failed", "rejected", "canceled")
APPROACHES = ("campaign", "naive")
MAX_ATTEMPTS, REATTEMPT_WAIT = 3, 300
# Production values, divided (interval) or multiplied (rate) by the simulator's speed.
POLL_INTERVAL, REQUESTS_PER_SECOND = 60.0, 10.0
CHUNK_SIZE = 5000
TARGETS = {
    "queue_requests": 100,
    "status_per_call": 1.2,
    "rss_mb": 300.0,
    "kwargs_kb": 4.0,
    "result_kb": 1000.0,
}
#: Area codes of the callees, one per 10,000 rows (every number is valid and distinct).
AREAS = ("617", "212", "415", "312", "202", "305", "713", "206", "404", "503", "602", "720")


# The simulator's ThreadingHTTPServer listens with a backlog of 5; the naive side opens up to 100
# connections at once and would lose SYNs to it (1 s kernel retransmits). Measure the client instead.
def number(n: int) -> str:
    return f"+1{AREAS[n // 10_000]}555{n % 10_000:04d}"


def outcome(n: int) -> str:
    """70 % answer (the default), then busy once, never answering, rejecting: spread over the rows."""
    share = n % 20
    return "busy:1" if share < 3 else "never" if share < 5 else "reject" if share < 6 else "answer"


# --- parent ------------------------------------------------------------------------------------


def start_simulator(calls: int, speed: float, log: Path) -> tuple[subprocess.Popen[str], str]:
    """The simulator in its own process, with the callees scripted; returns it and its connection URI."""
    scripted = [f"--outcome={number(n)}={outcome(n)}" for n in range(calls) if outcome(n) != "answer"]
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow_provider_fuse.testing.cli",
                "--port",
                "0",
                "--speed",
                str(speed),
                "--log-level",
                "WARNING",
                *scripted,
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdout is not None
    export = process.stdout.readline().strip()
    if not export.startswith("export "):
        stop(process)
        raise RuntimeError(f"fuse-simulator did not start: {export!r}\n{log.read_text()[-2000:]}")
    return process, export.split("=", 1)[1].strip("'")


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def worker_command(role: str, args: list[str]) -> list[str]:
    return [sys.executable, __file__, "--worker", role, *args]


def result_of(role: str, returncode: int, stdout: str, stderr: str) -> dict[str, Any]:
    results = [line for line in stdout.splitlines() if line.startswith(RESULT_MARK)]
    if returncode != 0 or not results:
        raise RuntimeError(f"{role} worker exited {returncode}:\n{stderr[-3000:]}")
    result: dict[str, Any] = json.loads(results[-1][len(RESULT_MARK) :])
    return result


def measure(approach: str, calls: int, speed: float, workdir: Path) -> dict[str, Any]:
    """The tracker starts first and waits for the calls, so it tracks every call from its queueing."""
    simulator, connection_uri = start_simulator(calls, speed, workdir / f"simulator-{approach}.log")
    tracker: subprocess.Popen[str] | None = None
    try:
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(workdir / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW_CONN_FUSE_DEFAULT": connection_uri,
        }
        handoff = workdir / f"{approach}.handoff"
        common = ["--calls", str(calls), "--speed", str(speed), "--handoff", str(handoff)]
        track_role, queue_role = f"{approach}-track", f"{approach}-queue"
        tracker = subprocess.Popen(
            worker_command(track_role, common),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        done = subprocess.run(
            worker_command(queue_role, common),
            env=env,
            capture_output=True,
            text=True,
            timeout=60 + calls / 50,
        )
        queued = result_of(queue_role, done.returncode, done.stdout, done.stderr)
        print(f"  {approach}: {calls:,} calls queued in {queued['wall_s']:.1f} s", flush=True)
        stdout, stderr = tracker.communicate(timeout=120 + calls / 50)
        tracked = result_of(track_role, tracker.returncode, stdout, stderr)
        print(
            f"  {approach}: every call tracked to its end in {tracked['wall_s']:.1f} s",
            flush=True,
        )
    finally:
        if tracker is not None and tracker.poll() is None:
            tracker.kill()
            tracker.wait()
        stop(simulator)
    return {"approach": approach, "calls": calls, "queued": queued, "tracked": tracked}


def print_table(rows: list[dict[str, Any]], speed: float) -> None:
    header = (
        f"{'approach':<9} {'calls':>7} {'queue req':>9} {'status req':>10} {'per call':>8} "
        f"{'queue s':>8} {'track s':>8} {'track CPU s':>11} {'track RSS MB':>12} {'ended':>7}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        queued, tracked, calls = row["queued"], row["tracked"], row["calls"]
        print(
            f"{row['approach']:<9} {calls:>7,} {queued['requests']:>9,} {tracked['requests']:>10,} "
            f"{tracked['requests'] / calls:>8.2f} {queued['wall_s']:>8.1f} {tracked['wall_s']:>8.1f} "
            f"{tracked['cpu_s']:>11.1f} {tracked['peak_rss_mb']:>12.0f} {tracked['ended']:>7,}"
        )
    print(
        f"\nSimulator at {speed:g}x: poll interval {POLL_INTERVAL / speed:g} s, ceiling "
        f"{REQUESTS_PER_SECOND * speed:g} status requests/s (production: {POLL_INTERVAL:g} s, "
        f"{REQUESTS_PER_SECOND:g}/s). Peak RSS is the whole tracker process, Airflow imports included "
        f"({rows[0]['tracked']['baseline_rss_mb']:.0f} MB before tracking)."
    )


def print_verdicts(rows: list[dict[str, Any]]) -> None:
    campaign = next(row for row in rows if row["approach"] == "campaign")
    queued, tracked, calls = campaign["queued"], campaign["tracked"], campaign["calls"]
    print(
        f"\nCampaign: trigger kwargs {queued['kwargs_bytes']:,} bytes; the task's result "
        f"{tracked['result_bytes']:,} bytes in XCom ({tracked['result_listed']:,} calls listed)."
    )
    checks = [
        (
            f"queued in <= {TARGETS['queue_requests']} requests",
            queued["requests"] <= TARGETS["queue_requests"],
        ),
        (
            f"<= {TARGETS['status_per_call']:g} status requests per call",
            tracked["requests"] / calls <= TARGETS["status_per_call"],
        ),
        (f"tracker < {TARGETS['rss_mb']:g} MB peak RSS", tracked["peak_rss_mb"] < TARGETS["rss_mb"]),
        (
            f"trigger kwargs < {TARGETS['kwargs_kb']:g} KB",
            queued["kwargs_bytes"] < TARGETS["kwargs_kb"] * 1000,
        ),
        (
            f"task result < {TARGETS['result_kb']:g} KB in XCom",
            tracked["result_bytes"] < TARGETS["result_kb"] * 1000,
        ),
        ("every call tracked to its end", tracked["ended"] == calls),
    ]
    print(f"\nTargets for the {calls:,}-call campaign:")
    for label, ok in checks:
        print(f"  {'ok  ' if ok else 'MISS'} {label}")


# --- workers -----------------------------------------------------------------------------------


def count_requests() -> dict[str, int]:
    """Count every HTTP request the hook sends (retries included), sync and async."""
    from airflow_provider_fuse.hooks import fuse as hook_module

    counts = {"sync": 0, "async": 0}
    send, aget = hook_module.FuseHook._send, hook_module._aget

    def counted_send(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["sync"] += 1
        return send(self, *args, **kwargs)

    async def counted_aget(*args: Any) -> Any:
        counts["async"] += 1
        return await aget(*args)

    hook_module.FuseHook._send = counted_send  # type: ignore[method-assign]
    hook_module._aget = counted_aget
    return counts


def rows(calls: int) -> list[dict[str, Any]]:
    return [{"phone_number": number(n), "variables": {"n": n}} for n in range(calls)]


def queue_campaign(calls: int, speed: float, handoff: Path) -> int:
    """QueueCallsOperator up to its deferral; the trigger's serialized kwargs and the task's XComs
    (what the triggerer's supervisor would serve) go to the handoff file."""
    from airflow.providers.common.compat.sdk import TaskDeferred

    from airflow_provider_fuse.operators.fuse import QueueCallsOperator

    class TI:
        dag_id, task_id, run_id, map_index = "bench", "campaign", "manual", -1

        def __init__(self) -> None:
            self.xcom: dict[str, Any] = {}

        def xcom_push(self, key: str, value: Any) -> None:
            self.xcom[key] = value

    operator = QueueCallsOperator(
        task_id="campaign",
        application_id=1,
        deployment_id=2,
        calls=rows(calls),
        max_attempts=MAX_ATTEMPTS,
        reattempt_wait=REATTEMPT_WAIT,
        chunk_size=CHUNK_SIZE,
        deferrable=True,
        poll_interval=POLL_INTERVAL / speed,
        max_requests_per_second=REQUESTS_PER_SECOND * speed,
        timeout=3600,
    )
    ti = TI()
    try:
        operator.execute({"ti": ti})  # type: ignore[arg-type]
    except TaskDeferred as deferred:  # what the triggerer receives, written at once
        kwargs = deferred.trigger.serialize()[1]
        KWARGS_BYTES.append(len(json.dumps(kwargs)))
        partial = handoff.with_suffix(".partial")
        partial.write_text(json.dumps({"kwargs": kwargs, "xcom": ti.xcom}))
        partial.replace(handoff)
    return calls


#: The deferral's trigger kwargs, as the metadata database would store them (JSON bytes).
KWARGS_BYTES: list[int] = []


def queue_naive(calls: int, speed: float, handoff: Path) -> int:
    """One queue request per call; each id is handed over at once, as a task deferring right away."""
    from airflow_provider_fuse.hooks.fuse import FuseHook
    from airflow_provider_fuse.models import CallRequest

    hook = FuseHook()
    options = {"max_attempts": MAX_ATTEMPTS, "reattempt_wait": REATTEMPT_WAIT}
    with handoff.open("w") as ids:
        for row in rows(calls):
            request = CallRequest(row["phone_number"], variables=row["variables"], **options)
            ids.write(hook.queue_call(1, 2, request) + "\n")
            ids.flush()
    return calls


async def handed_over(handoff: Path) -> None:
    while not handoff.exists():
        await asyncio.sleep(0.01)


async def track_campaign(calls: int, speed: float, handoff: Path) -> tuple[int, float, float]:
    """The triggerer's part: the trigger rebuilt from its kwargs, its ids read from XCom, run to its event."""
    from airflow_provider_fuse.triggers import fuse as triggers

    await handed_over(handoff)
    cpu, started = time.process_time(), time.perf_counter()
    handed = json.loads(handoff.read_text())
    xcom = {key: value for key, value in handed["xcom"].items() if not key.endswith("_rows")}

    async def read_xcom(where: Any, key: str) -> Any:  # the triggerer's supervisor, in this process
        return xcom.get(key)

    triggers.read_xcom = read_xcom  # type: ignore[assignment]
    trigger = triggers.FuseCallsTrigger(**handed["kwargs"])
    (event,) = [event.payload async for event in trigger.run()]
    EVENTS.append(event)
    ended = sum(1 for call in event["calls"] if call[1] in TERMINAL)
    return ended, time.perf_counter() - started, time.process_time() - cpu


#: The campaign's one event, for the result built after the tracker's figures were read.
EVENTS: list[dict[str, Any]] = []


def result_bytes(handoff: Path) -> tuple[int, int]:
    """The task's result as ``execute_complete`` builds it from the event: its XCom size, calls listed."""
    from airflow_provider_fuse.campaign import QueuedChunk
    from airflow_provider_fuse.operators.fuse import CHUNK_CALLS_XCOM_KEY, CHUNK_XCOM_KEY, QUEUED_XCOM_KEY
    from airflow_provider_fuse.waiting import campaign_outcome

    xcom = json.loads(handoff.read_text())["xcom"]
    queued = xcom[QUEUED_XCOM_KEY]
    chunks = [
        QueuedChunk.from_xcom(
            xcom[CHUNK_XCOM_KEY.format(index=i)], xcom[CHUNK_CALLS_XCOM_KEY.format(index=i)], False
        )
        for i in range(queued["chunks"])
    ]
    value = campaign_outcome(EVENTS[0], queued, 0.0, chunks)[0].to_xcom()
    return len(json.dumps(value)), len(value["calls"])


async def track_naive(calls: int, speed: float, handoff: Path) -> tuple[int, float, float]:
    """One FuseCallTrigger per call, each started as soon as its call id is handed over."""
    from airflow_provider_fuse.triggers.fuse import FuseCallTrigger

    async def wait(call_id: str) -> str:
        trigger = FuseCallTrigger(call_id, poll_interval=POLL_INTERVAL / speed)
        (event,) = [event.payload async for event in trigger.run()]
        return str(event["status"])

    await handed_over(handoff)
    cpu, started = time.process_time(), time.perf_counter()
    waits: list[asyncio.Task[str]] = []
    with handoff.open() as ids:
        while len(waits) < calls:
            line = ids.readline()
            if line.endswith("\n"):
                waits.append(asyncio.create_task(wait(line.strip())))
            else:
                ids.seek(ids.tell() - len(line))  # a partial line: read it again when complete
                await asyncio.sleep(0.005)
    ended = sum(1 for status in await asyncio.gather(*waits) if status in TERMINAL)
    return ended, time.perf_counter() - started, time.process_time() - cpu


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def worker(role: str, calls: int, speed: float, handoff: Path) -> None:
    import logging

    from airflow_provider_fuse.hooks.fuse import FuseHook

    logging.disable(logging.WARNING)  # progress lines would cost the tracker CPU it does not spend in Airflow
    FuseHook.backoff = 0.2
    counts = count_requests()
    baseline = peak_rss_mb()
    if role.endswith("-queue"):
        cpu, started = time.process_time(), time.perf_counter()
        ended = (queue_campaign if role.startswith("campaign") else queue_naive)(calls, speed, handoff)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    else:
        track = track_campaign if role.startswith("campaign") else track_naive
        ended, wall, cpu = asyncio.run(track(calls, speed, handoff))
    result = {
        "requests": counts["sync"] + counts["async"],
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": peak_rss_mb(),
        "baseline_rss_mb": baseline,
        "ended": ended,
        "kwargs_bytes": KWARGS_BYTES[0] if KWARGS_BYTES else None,
    }
    if EVENTS:  # after the tracker's figures: the task's part, not the triggerer's
        result["result_bytes"], result["result_listed"] = result_bytes(handoff)
    print(RESULT_MARK + json.dumps(result), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=100_000, help="calls in the campaign")
    parser.add_argument(
        "--naive-calls", type=int, default=None, help="calls the naive way (default: --calls, at most 10,000)"
    )
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    parser.add_argument("--quick", action="store_true", help="1,000 calls vs 200 the naive way: a smoke run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--handoff", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.calls, args.speed, args.handoff)
        return 0

    calls = 1_000 if args.quick else args.calls
    naive_calls = 200 if args.quick else (args.naive_calls or min(calls, 10_000))
    workdir = Path(tempfile.mkdtemp(prefix="fuse-campaign-scale-"))
    try:
        results = [
            measure("campaign", calls, args.speed, workdir),
            measure("naive", naive_calls, args.speed, workdir),
        ]
        print()
        print_table(results, args.speed)
        print_verdicts(results)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

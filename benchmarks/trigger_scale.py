"""CPU per poll, peak RSS and poll regularity of thousands of FuseCallTriggers in one event loop.

Starts ``fuse-simulator`` in its own process (speed 1) and queues the calls with one bulk_queue
upload whose ``start_timestamp`` is a day ahead, so every call stays ``queued`` while it is measured.
Then, for each number of waits N, three arms run, each in a fresh subprocess (so peak RSS is per
arm) holding ONE asyncio loop with N waits, started at random offsets within one poll interval (as
deferrals arrive at a triggerer), all over HTTPS unless ``--plain-http``. The floor and ours run side
by side (their windows overlap, so the rest of the machine's load weighs on both alike; ``--apart``
runs them one after the other), the anchor alone after them:

* ``floor``: what the network costs: one shared aiohttp session, ``GET`` + ``json()`` per poll and
  nothing else (no retries, deadline, masking, parsing, jitter or events);
* ``ours``: ``FuseCallTrigger.run()`` as shipped (one aiohttp session per connection and event loop);
* ``anchor``: the same trigger and hook, but a new aiohttp ClientSession opened and closed around
  every status request (the async-hook pattern of the dbt Cloud and HTTP providers).

One-time costs (importing aiohttp, loading Airflow's secrets backends) are paid before the waits
start, as in a long-running triggerer. After a warm-up of one interval, the process CPU time
(``time.process_time``, user + system) is read over a fixed window and divided by the polls completed
in it; every arm's polls are timed by the same wrapper. Every poll's start and end are recorded: the
gap between two polls of one wait should be the interval plus the answer's latency; ``lag`` is the
event loop's lateness (next start - previous end - interval). A wait is "starved" when it had no poll
in the window or a gap above 1.5 intervals. ``gen2`` counts full garbage collections in the window and
their longest pause (each one stops the loop), ``GC ms`` the time spent in every collection. The
interval defaults to 0.003 s x N within [1 s, 30 s]: about 333 status requests per second, the rate
of 10,000 triggers at the operators' default poll_interval of 30 s.

    .venv/bin/python benchmarks/trigger_scale.py                 # 1,000 and 10,000 waits, ~7 min
    .venv/bin/python benchmarks/trigger_scale.py --calls 1000 --repeat 3   # medians of 3, ~3 min
    .venv/bin/python benchmarks/trigger_scale.py --quick         # 200 waits, smoke run, ~30 s
    .venv/bin/python benchmarks/trigger_scale.py --calls 10000 --interval 10   # 1,000 polls/s
    .venv/bin/python benchmarks/trigger_scale.py --calls 1000 --variants ours --profile
    .venv/bin/python benchmarks/trigger_scale.py --calls 10000 --interval 10 --no-gc  # diagnostic

Targets (issues 4 and 18): ours/floor CPU per poll at most 1.2 at 1,000 waits, anchor/ours at
least 3; 10,000 waits stay under 300 MB peak RSS and none is starved.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from airflow_provider_fuse import protocol

VARIANTS = ("floor", "ours", "anchor")
RESULT_MARK = "TRIGGER_SCALE_RESULT "
STARVED_FACTOR = 1.5
RSS_TARGET_MB = 300.0
FLOOR_RATIO_TARGET = 1.2  # ours / floor, CPU per poll, at 1,000 waits
ANCHOR_RATIO_TARGET = 3.0  # anchor / ours
#: Pause between two runs: the anchor leaves the simulator closing a thousand TLS connections.
SETTLE_SECONDS = 3.0


# --- parent: the simulator, the calls, one subprocess per variant ------------------------------


# The simulator speaks TLS when given a certificate: Fuse is HTTPS-only, so a session per poll costs a
# TLS handshake per poll in production.
SIMULATOR = """
import os, signal, ssl, sys, threading
def stop_with_parent():  # stdin closes when the benchmark exits, however it exits
    sys.stdin.read()
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=stop_with_parent, daemon=True).start()
if os.environ.get("BENCH_TLS_CERT"):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.environ["BENCH_TLS_CERT"], os.environ["BENCH_TLS_KEY"])
    def get_request(self):  # the handshake runs in the connection's own thread, not in accept()
        sock, address = self.socket.accept()
        return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address
    from airflow_provider_fuse.testing import server
    server.SimulatorServer.get_request = get_request
from airflow_provider_fuse.testing.cli import main
sys.exit(main(sys.argv[1:]))
"""


def make_certificate(workdir: Path) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate for 127.0.0.1 and its key (cryptography comes with Airflow)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = workdir / "cert.pem", workdir / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def start_simulator(
    log_file: Path, tls: tuple[Path, Path] | None = None
) -> tuple[subprocess.Popen[str], str, str, tuple[str, str]]:
    """The running simulator (speed 1), the connection URI it exports, its base URL and credentials."""
    env = dict(os.environ)
    if tls:
        env.update(BENCH_TLS_CERT=str(tls[0]), BENCH_TLS_KEY=str(tls[1]))
    with log_file.open("w") as stderr:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-c", SIMULATOR, "--port", "0", "--speed", "1", "--log-level", "WARNING"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
    assert process.stdout is not None
    try:
        export = process.stdout.readline().strip()
        if not export.startswith("export "):
            raise RuntimeError(f"fuse-simulator did not start: {export!r}\n{log_file.read_text()[-2000:]}")
    except BaseException:
        process.kill()
        process.wait()
        raise
    connection_uri = export.split("=", 1)[1].strip("'")
    if tls:
        connection_uri = connection_uri.replace("fuse://http://", "fuse://https://", 1)
    uri = urlsplit(connection_uri.removeprefix("fuse://"))
    base_url = f"{uri.scheme}://{uri.hostname}:{uri.port}{uri.path}"
    return process, connection_uri, base_url, (unquote(uri.username or ""), unquote(uri.password or ""))


def queue_calls(base_url: str, auth: tuple[str, str], count: int, verify: Path | bool = True) -> list[str]:
    """``count`` calls in one bulk_queue upload, all starting a day from now (so all stay queued)."""
    rows = ((f"+1617555{n % 10_000:04d}", {"n": n}) for n in range(count))
    answer = requests.post(
        base_url + protocol.bulk_queue_path(1, 1),
        auth=auth,
        data={protocol.START_TIMESTAMP: str(int(time.time()) + 86_400)},
        files={protocol.BULK_CSV_FIELD: ("calls.csv", protocol.build_bulk_csv(rows), "text/csv")},
        timeout=60,
        verify=str(verify) if isinstance(verify, Path) else verify,
    )
    answer.raise_for_status()
    call_ids = protocol.parse_bulk_queue_response(answer.json())
    assert call_ids is not None and len(call_ids) == count, answer.text[:200]
    return call_ids


def run_variants(
    variants: Sequence[str],
    call_ids: Sequence[str],
    interval: float,
    window: float,
    env: dict[str, str],
    workdir: Path,
    profile: bool,
    no_gc: bool,
) -> list[dict[str, Any]]:
    """Run the variants side by side, each in a fresh interpreter, and return their measurements.

    Side by side, their windows overlap: whatever else the machine runs weighs on each alike.
    """
    ids_file = workdir / f"ids-{len(call_ids)}.json"
    ids_file.write_text(json.dumps(list(call_ids)))
    budget = 2 * interval + window + 120 + len(call_ids) / 100  # startup, warm-up, window, slack
    workers = []
    try:
        for variant in variants:
            command = [sys.executable, __file__, "--worker", variant, "--ids-file", str(ids_file)]
            command += ["--interval", str(interval), "--window", str(window)]
            command += ["--profile"] * profile + ["--no-gc"] * no_gc
            workers.append(
                subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            )
        outputs = [worker.communicate(timeout=budget) for worker in workers]
    finally:
        for worker in workers:  # on a timeout or Ctrl-C: no worker outlives the benchmark
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    rows = []
    for variant, worker, (stdout, stderr) in zip(variants, workers, outputs, strict=True):
        results = [line for line in stdout.splitlines() if line.startswith(RESULT_MARK)]
        if worker.returncode != 0 or not results:
            raise RuntimeError(
                f"{variant} worker with {len(call_ids)} waits exited {worker.returncode}:\n{stderr[-3000:]}"
            )
        if profile:
            print(f"--- cProfile of {variant}, {len(call_ids):,} waits (measured window) ---")
            print("\n".join(line for line in stdout.splitlines() if not line.startswith(RESULT_MARK)))
        rows.append(json.loads(results[-1][len(RESULT_MARK) :]))
    return rows


# --- worker: one event loop, N triggers --------------------------------------------------------


def _rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class PollLog:
    """Start and end (perf_counter) of every status request, per call id."""

    def __init__(self) -> None:
        self.starts: dict[str, list[float]] = {}
        self.ends: dict[str, list[float]] = {}
        self.completed = 0
        self.errors = 0


class GcLog:
    """Start and duration of every garbage collection, by generation: each one stops the loop."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float, float]] = []  # (generation, start, seconds)
        self._started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], self._started, time.perf_counter() - self._started))

    def within(self, start: float, end: float, generations: Sequence[int] = (2,)) -> list[float]:
        return [pause for gen, at, pause in self.pauses if gen in generations and start <= at <= end]


def timed(log: PollLog, poll: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``poll(owner, call_id, ...)`` wrapped to record every poll's start and end; every arm pays it."""

    async def timed_poll(owner: Any, call_id: str | int, *args: Any, **kwargs: Any) -> Any:
        key = str(call_id)
        log.starts.setdefault(key, []).append(time.perf_counter())
        try:
            return await poll(owner, call_id, *args, **kwargs)
        except Exception:
            log.errors += 1
            raise
        finally:
            log.ends.setdefault(key, []).append(time.perf_counter())
            log.completed += 1

    return timed_poll


def install_session_per_poll(hook_module: Any) -> None:
    """The anchor: every status request opens and closes its own ClientSession (and connection)."""

    class SessionPerRequest:
        @contextlib.asynccontextmanager
        async def session(self, settings: Any) -> AsyncIterator[Any]:
            session = hook_module._new_session(settings)
            try:
                yield session
            finally:
                await session.close()

    @contextlib.asynccontextmanager
    async def hold_nothing(self: Any) -> AsyncIterator[None]:
        yield None

    hook_module._shared_sessions = SessionPerRequest()
    hook_module.FuseHook.hold_session = hold_nothing


class Floor:
    """The floor arm: one shared aiohttp session, ``GET`` + ``json()`` per poll, nothing else."""

    def __init__(self, session: Any, urls: dict[str, str]) -> None:
        self.session = session
        self.urls = urls

    async def poll(self, call_id: str) -> Any:
        async with self.session.get(self.urls[call_id]) as response:
            return await response.json()


async def drive(
    variant: str, call_ids: Sequence[str], interval: float, window: float, log: PollLog, profile: bool
) -> dict[str, Any]:
    """N waits in this loop; CPU and polls counted over ``window`` after a warm-up of one interval."""
    import aiohttp

    from airflow_provider_fuse.hooks.fuse import FuseHook
    from airflow_provider_fuse.triggers.fuse import FuseCallTrigger

    events: list[str] = []
    rng = random.Random(4)
    floor_poll = timed(log, Floor.poll)
    if variant == "floor":  # the same request as ours: the same URL and credentials
        settings = await FuseHook().asettings()
        session = aiohttp.ClientSession(headers={"Authorization": settings.authorization})
        floor = Floor(session, {call_id: settings.status_url(call_id) for call_id in call_ids})

    async def wait(call_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if variant == "floor":
            while True:
                await floor_poll(floor, call_id)
                await asyncio.sleep(interval)
        async for event in FuseCallTrigger(call_id, poll_interval=interval).run():
            events.append(event.payload["status"])

    tasks = [asyncio.create_task(wait(call_id, rng.uniform(0, interval))) for call_id in call_ids]
    await asyncio.sleep(interval + 1.0)  # warm-up: every wait has started and polled once
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu_started, polls_started, started = time.process_time(), log.completed, time.perf_counter()
    await asyncio.sleep(window)
    cpu, polls, ended = time.process_time() - cpu_started, log.completed - polls_started, time.perf_counter()
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if variant == "floor":
        await session.close()
    return {"cpu": cpu, "polls": polls, "window_start": started, "window_end": ended, "events": events}


async def warm_up(call_id: str) -> None:
    """Pay the one-time costs (importing aiohttp, loading Airflow's secrets backends) before measuring,
    as a long-running triggerer has; on a loop of its own, so no session outlives it."""
    from airflow_provider_fuse.hooks.fuse import FuseHook

    hook = FuseHook()
    async with hook.hold_session():
        await hook.aget_call(call_id)


def worker(variant: str, ids_file: Path, interval: float, window: float, profile: bool, no_gc: bool) -> None:
    call_ids = json.loads(ids_file.read_text())
    rss_before_airflow = _rss_mb()
    from airflow_provider_fuse.hooks import fuse as hook_module
    from airflow_provider_fuse.triggers import fuse as trigger_module  # noqa: F401  (import cost)

    if variant == "anchor":
        install_session_per_poll(hook_module)
    elif variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}")
    asyncio.run(warm_up(call_ids[0]))
    rss_idle = _rss_mb()
    log, gc_log = PollLog(), GcLog()
    hook_module.FuseHook.aget_call = timed(log, hook_module.FuseHook.aget_call)
    if no_gc:
        gc.disable()
    run = asyncio.run(drive(variant, call_ids, interval, window, log, profile))

    # Steady state only: polls that started inside the measured window (after every wait's start).
    window_start, window_end = run["window_start"], run["window_end"]
    gaps, lags, latencies, starved = [], [], [], 0
    for call_id in call_ids:
        starts, ends = log.starts.get(call_id, []), log.ends.get(call_id, [])
        mine, polled = [], False
        for k, (start, end) in enumerate(zip(starts, ends, strict=False)):  # a cancelled poll has no end
            if not window_start <= start <= window_end:
                continue
            polled = True
            latencies.append(end - start)
            if k:
                mine.append(start - starts[k - 1])
                lags.append(start - ends[k - 1] - interval)
        gaps += mine
        stalled = not polled or window_end - starts[-1] > STARVED_FACTOR * interval
        starved += stalled or any(gap > STARVED_FACTOR * interval for gap in mine)
    pauses = gc_log.within(window_start, window_end)
    print(
        RESULT_MARK
        + json.dumps(
            {
                "variant": variant,
                "triggers": len(call_ids),
                "interval": interval,
                "window": window_end - window_start,
                "polls": run["polls"],
                "cpu": run["cpu"],
                "rss_before_airflow_mb": rss_before_airflow,
                "rss_idle_mb": rss_idle,
                "peak_rss_mb": _peak_rss_mb(),
                "gap_p99": _quantile(gaps, 0.99),
                "gap_max": max(gaps, default=float("nan")),
                "lag_p99": _quantile(lags, 0.99),
                "latency_p99": _quantile(latencies, 0.99),
                "starved": starved,
                "errors": log.errors,
                "events": len(run["events"]),
                "gen2_count": len(pauses),
                "gen2_max": max(pauses, default=0.0),
                "gen2_total": sum(pauses),
                "gc_total": sum(gc_log.within(window_start, window_end, (0, 1, 2))),
            }
        ),
        flush=True,
    )


def _quantile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1]


# --- report ------------------------------------------------------------------------------------


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'arm':<9} {'run':>3} {'waits':>8} {'interval s':>10} {'polls':>7} {'CPU s/1k polls':>14} "
        f"{'idle RSS MB':>11} {'peak RSS MB':>11} {'gap p99 s':>9} {'gap max s':>9} {'lag p99 ms':>10} "
        f"{'latency p99 ms':>14} {'gen2 n':>6} {'gen2 max ms':>11} {'GC ms':>6} {'starved':>7} {'errors':>6}"
    )
    for r in rows:
        print(
            f"{r['variant']:<9} {r['run']:>3} {r['triggers']:>8,} {r['interval']:>10g} {r['polls']:>7,} "
            f"{1000 * r['cpu'] / max(r['polls'], 1):>14.3f} {r['rss_idle_mb']:>11.0f} "
            f"{r['peak_rss_mb']:>11.0f} {r['gap_p99']:>9.2f} {r['gap_max']:>9.2f} "
            f"{1000 * r['lag_p99']:>10.1f} {1000 * r['latency_p99']:>14.1f} {r['gen2_count']:>6} "
            f"{1000 * r['gen2_max']:>11.0f} {1000 * r['gc_total']:>6.0f} {r['starved']:>7,} "
            f"{r['errors'] + r['events']:>6,}"
        )


def cpu_per_poll(rows: list[dict[str, Any]], arm: str, n: int) -> float | None:
    """The arm's median CPU seconds per poll over its runs with ``n`` waits."""
    values = [r["cpu"] / r["polls"] for r in rows if (r["variant"], r["triggers"]) == (arm, n) and r["polls"]]
    return statistics.median(values) if values else None


def print_verdicts(rows: list[dict[str, Any]]) -> None:
    print()
    for n in sorted({r["triggers"] for r in rows}):
        floor, ours, anchor = (cpu_per_poll(rows, arm, n) for arm in VARIANTS)
        if floor and ours:
            ratio = ours / floor
            verdict = "met" if ratio <= FLOOR_RATIO_TARGET else "MISSED"
            target = f"target <= {FLOOR_RATIO_TARGET:g} at 1,000: {verdict}" if n == 1_000 else "no target"
            print(f"{n:>6,} waits: ours / floor CPU per poll = {ratio:.2f}x ({target})")
        if ours and anchor:
            ratio = anchor / ours
            verdict = "met" if ratio >= ANCHOR_RATIO_TARGET else "MISSED"
            print(
                f"{n:>6,} waits: anchor / ours CPU per poll = {ratio:.2f}x "
                f"(target >= {ANCHOR_RATIO_TARGET:g}): {verdict}"
            )
        if mine := [r for r in rows if (r["variant"], r["triggers"]) == ("ours", n)]:
            peak = max(r["peak_rss_mb"] for r in mine)
            ok_rss = peak < RSS_TARGET_MB
            ok_poll = all(r["starved"] == 0 and r["errors"] + r["events"] == 0 for r in mine)
            print(
                f"{n:>6,} waits: ours peak RSS {peak:.0f} MB "
                f"(target < {RSS_TARGET_MB:.0f} MB at 10,000): {'met' if ok_rss else 'MISSED'}; "
                f"every wait polled at its interval: {'yes' if ok_poll else 'NO'}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, nargs="+", default=None, help="triggers per run")
    parser.add_argument("--interval", type=float, default=None, help="poll interval (default 0.003 s x N)")
    parser.add_argument(
        "--window", type=float, default=None, help="measured seconds (default 1.2 intervals, at least 15)"
    )
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of every arm, interleaved; verdicts take the median"
    )
    parser.add_argument(
        "--apart", action="store_true", help="run floor and ours one after the other, not side by side"
    )
    parser.add_argument("--quick", action="store_true", help="200 triggers, short window: a smoke run")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    parser.add_argument(
        "--plain-http", action="store_true", help="plain HTTP instead of TLS (no handshake per new session)"
    )
    parser.add_argument("--no-gc", action="store_true", help="diagnostic: workers run with gc.disable()")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--ids-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.ids_file, args.interval, args.window, args.profile, args.no_gc)
        return 0

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # run the cleanup below
    counts = args.calls or ([200] if args.quick else [1_000, 10_000])
    workdir = Path(tempfile.mkdtemp(prefix="fuse-trigger-scale-"))
    simulator = None
    try:
        tls = None if args.plain_http else make_certificate(workdir)
        simulator, connection_uri, base_url, auth = start_simulator(workdir / "simulator.log", tls)
        started = time.perf_counter()
        call_ids = queue_calls(base_url, auth, max(counts), tls[0] if tls else True)
        print(
            f"simulator at {base_url} (pid {simulator.pid}): {len(call_ids):,} calls queued "
            f"in {time.perf_counter() - started:.2f} s"
        )
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(workdir / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW_CONN_FUSE_DEFAULT": connection_uri,
        }
        if tls:
            env["SSL_CERT_FILE"] = str(tls[0])  # the workers trust the simulator's certificate
        rows = []
        for n in counts:
            interval = args.interval or min(30.0, max(1.0, 0.003 * n))
            window = args.window or max(2.0 if args.quick else 15.0, 1.2 * interval)
            # Floor and ours side by side (unless --apart), the anchor alone: it loads the simulator.
            paired = [v for v in args.variants if v != "anchor"]
            groups = [[v] for v in args.variants] if args.apart else [paired, ["anchor"]]
            for run in range(1, args.repeat + 1):  # runs interleaved: a burst of other work hits all
                for group in (g for g in groups if g and set(g) <= set(args.variants)):
                    found = run_variants(
                        group, call_ids[:n], interval, window, env, workdir, args.profile, args.no_gc
                    )
                    rows += [{**row, "run": run} for row in found]
                    print(f"  done: {', '.join(group)}, {n:,} waits, run {run}", flush=True)
                    time.sleep(SETTLE_SECONDS)
        print()
        print_table(rows)
        print_verdicts(rows)
    finally:
        if simulator is not None:
            if simulator.stdin:
                simulator.stdin.close()
            simulator.terminate()
            try:
                simulator.wait(timeout=10)
            except subprocess.TimeoutExpired:
                simulator.kill()
                simulator.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

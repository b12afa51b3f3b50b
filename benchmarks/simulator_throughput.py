"""How many status requests per second the Fuse simulator answers with 10,000 calls tracked.

Starts ``fuse-simulator`` in a subprocess (its own GIL, as in the demo and end-to-end tests), queues
the calls with one bulk_queue request, then GETs random call statuses from one aiohttp session with
several concurrent clients for a fixed time. Prints a table; the target is at least 1,000 req/s.

    .venv/bin/python benchmarks/simulator_throughput.py [--calls 10000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import time
from urllib.parse import unquote, urlsplit

import aiohttp
import requests

from airflow_provider_fuse import protocol


def start_simulator() -> tuple[subprocess.Popen[str], str, tuple[str, str]]:
    """The running CLI, its base URL and its credentials, read from the export line it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_fuse.testing.cli", "--port", "0", "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    export = process.stdout.readline().strip()
    uri = urlsplit(export.split("=", 1)[1].strip("'").removeprefix("fuse://"))
    base_url = f"{uri.scheme}://{uri.hostname}:{uri.port}{uri.path}"
    return process, base_url, (unquote(uri.username or ""), unquote(uri.password or ""))


def queue_calls(base_url: str, auth: tuple[str, str], count: int) -> list[str]:
    rows = ((f"+1617555{n % 10_000:04d}", {"n": n}) for n in range(count))
    answer = requests.post(
        base_url + protocol.bulk_queue_path(1, 1),
        auth=auth,
        files={protocol.BULK_CSV_FIELD: ("calls.csv", protocol.build_bulk_csv(rows), "text/csv")},
        timeout=60,
    )
    answer.raise_for_status()
    call_ids = protocol.parse_bulk_queue_response(answer.json())
    assert call_ids is not None and len(call_ids) == count, answer.text[:200]
    return call_ids


async def hammer(
    base_url: str, auth: tuple[str, str], call_ids: list[str], clients: int, seconds: float
) -> int:
    """Status requests answered 200 by ``clients`` concurrent pollers within ``seconds``."""
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, auth=aiohttp.BasicAuth(*auth)) as session:

        async def client(seed: int) -> int:
            rng, done = random.Random(seed), 0
            while time.perf_counter() < deadline:
                async with session.get(base_url + protocol.status_path(rng.choice(call_ids))) as answer:
                    await answer.read()
                    done += answer.status == 200
            return done

        return sum(await asyncio.gather(*(client(n) for n in range(clients))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    process, base_url, auth = start_simulator()
    try:
        started = time.perf_counter()
        call_ids = queue_calls(base_url, auth, args.calls)
        print(f"bulk_queue of {args.calls:,} calls: {time.perf_counter() - started:.2f} s\n")
        print(f"{'calls tracked':>13} {'clients':>7} {'requests':>9} {'seconds':>8} {'req/s':>8}")
        for clients in args.clients:
            started = time.perf_counter()
            done = asyncio.run(hammer(base_url, auth, call_ids, clients, args.seconds))
            elapsed = time.perf_counter() - started
            print(f"{len(call_ids):>13,} {clients:>7} {done:>9,} {elapsed:>8.2f} {done / elapsed:>8,.0f}")
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()

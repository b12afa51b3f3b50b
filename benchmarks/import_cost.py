"""What importing an operator module costs beyond ``airflow.sdk``: ours against the HTTP provider's.

DAG files import operator modules at every parse, so this is paid by the dag-processor over and over.
Each repetition runs fresh interpreters (``AIRFLOW_HOME`` in a temporary folder):

* ``python -X importtime -c "import airflow.sdk; import MODULE"``: the self times of every module that
  the second statement loaded, summed;
* ``python -c ...`` without ``-X importtime`` (which adds its own overhead): the wall-clock time of the
  second statement, and which modules it added to ``sys.modules``.

The table shows the medians, the modules added, whether each heavy dependency (requests, aiohttp,
phonenumbers, tenacity) is loaded by the operator module ("new"), already by airflow.sdk ("sdk") or not
at all ("-"), and the costliest packages the module added. A first untimed run fills the bytecode caches.

    .venv/bin/pip install -e '.[bench]'   # the HTTP provider, for the comparison
    .venv/bin/python benchmarks/import_cost.py [--repeat 7]

Target (issue 4): at most 50 ms beyond airflow.sdk, and no more than HttpOperator's module.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

BASELINE = "airflow.sdk"
MODULES = {
    "QueueCallOperator (fuse)": "airflow_provider_fuse.operators.fuse",
    "HttpOperator (http)": "airflow.providers.http.operators.http",
}
HEAVY = ("requests", "aiohttp", "phonenumbers", "tenacity")
TARGET_MS = 50.0
TIMEOUT = 120

WALL_CLOCK = """
import json, sys, time
import {baseline}
before = set(sys.modules)
started = time.perf_counter()
import {module}
elapsed = time.perf_counter() - started
added = sorted(set(sys.modules) - before)
print(json.dumps({{"seconds": elapsed, "added": added, "before": sorted(before)}}))
"""


@dataclass
class Measurement:
    label: str
    module: str
    importtime_ms: list[float] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    before: set[str] = field(default_factory=set)
    package_ms: dict[str, float] = field(default_factory=dict)
    #: modules of the same package that ``import BASELINE`` already loaded (e.g. through the provider
    #: entry point), with their median self time: paid by every Airflow process, not in the figures.
    preloaded_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter; subprocess.run kills it on timeout or on any exception (e.g. Ctrl-C)."""
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=TIMEOUT)


def parse_importtime(stderr: str, module: str) -> tuple[dict[str, float], dict[str, float]]:
    """Self time in ms per module loaded by ``import BASELINE``, and by ``import module`` after it.

    ``-X importtime`` prints one line per module as it finishes, nested imports first and indented by
    two spaces per level; a top-level line (no indent) closes one statement's import.
    """
    baseline_rows: dict[str, float] = {}
    rows: dict[str, float] = {}
    after_baseline = False
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_field, _, name_field = line.removeprefix("import time:").split("|", 2)
        name_field = name_field.removeprefix(" ")  # then two spaces per nesting level
        top_level, name = not name_field.startswith(" "), name_field.strip()
        if not after_baseline:
            baseline_rows[name] = baseline_rows.get(name, 0.0) + int(self_field) / 1000
            after_baseline = top_level and name == BASELINE
            continue
        rows[name] = rows.get(name, 0.0) + int(self_field) / 1000
        if top_level and name == module:
            return baseline_rows, rows
    raise ValueError(f"{module} not found after {BASELINE} in the -X importtime output")


def _package(name: str) -> str:
    """Group modules by package: aiohttp.client -> aiohttp, airflow.providers.http.x -> airflow.providers.http."""
    parts = name.split(".")
    if parts[0] == "airflow" and len(parts) > 2 and parts[1] == "providers":
        return ".".join(parts[:3])
    return ".".join(parts[:2]) if parts[0] == "airflow" else parts[0]


def measure(label: str, module: str, repeat: int, env: dict[str, str]) -> Measurement:
    result = Measurement(label, module)
    code = WALL_CLOCK.format(baseline=BASELINE, module=module)
    first = _run(["-c", code], env)  # untimed: fills __pycache__, writes airflow.cfg
    if first.returncode != 0:
        result.error = first.stderr.strip().splitlines()[-1] if first.stderr.strip() else "failed"
        return result
    per_package: dict[str, list[float]] = defaultdict(list)
    preloaded: dict[str, list[float]] = defaultdict(list)
    root = _package(module)
    for _ in range(repeat):
        timed = _run(["-X", "importtime", "-c", f"import {BASELINE}; import {module}"], env)
        baseline_rows, rows = parse_importtime(timed.stderr, module)
        for name, ms in baseline_rows.items():
            if _package(name) == root:
                preloaded[name].append(ms)
        result.importtime_ms.append(sum(rows.values()))
        totals: dict[str, float] = defaultdict(float)
        for name, ms in rows.items():
            totals[_package(name)] += ms
        for package, ms in totals.items():
            per_package[package].append(ms)
        wall = _run(["-c", code], env)
        answer = json.loads(wall.stdout.strip().splitlines()[-1])
        result.wall_ms.append(1000 * answer["seconds"])
        result.added, result.before = answer["added"], set(answer["before"])
    result.package_ms = {p: statistics.median(v + [0.0] * (repeat - len(v))) for p, v in per_package.items()}
    result.preloaded_ms = {name: statistics.median(v) for name, v in preloaded.items()}
    return result


def heavy_status(m: Measurement, name: str) -> str:
    if name in m.before:
        return "sdk"
    return "new" if name in m.added else "-"


def print_table(results: list[Measurement]) -> None:
    heavy = " ".join(f"{h:>12}" for h in HEAVY)
    print(
        f"{'module':<26} {'importtime ms':>13} {'wall ms':>8} {'modules added':>13} {heavy}   costliest added"
    )
    for m in results:
        if m.error:
            print(f"{m.label:<26} not importable: {m.error}")
            continue
        top = sorted(m.package_ms.items(), key=lambda item: -item[1])[:4]
        costliest = ", ".join(f"{p} {ms:.0f}" for p, ms in top)
        flags = " ".join(f"{heavy_status(m, h):>12}" for h in HEAVY)
        print(
            f"{m.label:<26} {statistics.median(m.importtime_ms):>13.1f} {statistics.median(m.wall_ms):>8.1f} "
            f"{len(m.added):>13,} {flags}   {costliest}"
        )
    for m in results:
        if m.preloaded_ms:
            names = ", ".join(sorted(m.preloaded_ms))
            print(
                f"  note: {BASELINE} itself already imported {names} "
                f"({sum(m.preloaded_ms.values()):.1f} ms importtime), e.g. through the provider entry point"
            )


def print_verdict(results: list[Measurement]) -> None:
    ours, http = (next((m for m in results if m.module == module), None) for module in MODULES.values())
    if ours is None or ours.error:
        print("\nour operator module did not import: target not measured")
        return
    cost = statistics.median(ours.wall_ms)
    print(
        f"\n{ours.module}: {cost:.1f} ms beyond {BASELINE} (wall, median; importtime "
        f"{statistics.median(ours.importtime_ms):.1f} ms); target <= {TARGET_MS:.0f} ms: "
        f"{'met' if cost <= TARGET_MS else 'MISSED'}"
    )
    if http is None or http.error:
        print("HttpOperator not measured: pip install apache-airflow-providers-http (or the bench extra)")
        return
    theirs = statistics.median(http.wall_ms)
    print(
        f"HttpOperator's module: {theirs:.1f} ms; ours no more than theirs: "
        f"{'met' if cost <= theirs else 'MISSED'} ({theirs / max(cost, 1e-9):.1f}x less)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=7, help="fresh interpreters per module and mode")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # run the cleanup below
    home = tempfile.mkdtemp(prefix="fuse-import-cost-")
    env = {**os.environ, "AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    try:
        print(f"python {sys.version.split()[0]}, {args.repeat} repetitions each, medians\n")
        results = [measure(label, module, args.repeat, env) for label, module in MODULES.items()]
        print_table(results)
        print_verdict(results)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

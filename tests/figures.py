"""What the fault, crash and fuzz suites actually exercised, counted while they run.

The figures in ``docs/guarantees.md`` come from here: the session prints them at the end (and writes
them as JSON to ``$FUSE_FIGURES_JSON`` when set), so they are measured, not claimed.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

FAULTS: Counter[str] = Counter()
CRASHES: Counter[str] = Counter()
CALLS = Counter({"tasks_checked": 0, "calls_queued": 0, "calls_doubled": 0})
FUZZ: Counter[str] = Counter()
DEADLINES: list[tuple[str, float, float, str]] = []


def fault(name: str) -> None:
    """One fault scenario driven to its end (outcome and ledger asserted)."""
    FAULTS[name] += 1


def crash(name: str) -> None:
    """One crash survived (the task finished as it should, the ledger asserted)."""
    CRASHES[name] += 1


def deadline(name: str, overshoot: float, poll_interval: float, kind: str = "wait") -> None:
    """How long past its deadline a wait ended (``wait``) or its task's end date was (``task end``)."""
    DEADLINES.append((name, overshoot, poll_interval, kind))


def fuzzed(name: str, count: int = 1) -> None:
    FUZZ[name] += count


def queue_requests_processed(entries: Iterable[Mapping[str, Any]] | Iterable[Any]) -> int:
    """Queue requests that took effect (queued a call), from ledger entries (objects or dicts)."""
    count = 0
    for entry in entries:
        endpoint = entry["endpoint"] if isinstance(entry, Mapping) else entry.endpoint
        processed = entry["processed"] if isinstance(entry, Mapping) else entry.processed
        count += endpoint == "queue" and bool(processed)
    return count


def check_calls(entries: Iterable[Mapping[str, Any]] | Iterable[Any], expected: int = 1) -> int:
    """Count the calls one task queued; anything above ``expected`` is a doubled call (and fails)."""
    queued = queue_requests_processed(entries)
    CALLS["tasks_checked"] += 1
    CALLS["calls_queued"] += queued
    CALLS["calls_doubled"] += max(0, queued - expected)
    assert queued <= expected, f"{queued} calls queued where at most {expected} may be: a person rang twice"
    return queued


def check_campaign_rows(entries: Iterable[Mapping[str, Any]] | Iterable[Any]) -> list[str]:
    """The destinations of every bulk upload that took effect; a destination twice is a doubled call."""
    from airflow_provider_fuse import protocol

    rows: list[str] = []
    for entry in entries:
        fields = entry if isinstance(entry, Mapping) else vars(entry)
        if fields["endpoint"] == "bulk_queue" and fields["processed"]:
            rows += [destination for destination, _ in protocol.parse_bulk_csv(fields["form"]["csv"])]
    CALLS["tasks_checked"] += 1
    CALLS["calls_queued"] += len(rows)
    CALLS["calls_doubled"] += len(rows) - len(set(rows))
    assert len(rows) == len(set(rows)), f"a campaign queued a destination twice: {sorted(rows)}"
    return rows


def summary() -> dict[str, Any]:
    def worst(kind: str) -> dict[str, Any] | None:
        found = max((d for d in DEADLINES if d[3] == kind), key=lambda d: d[1] - d[2], default=None)
        return (
            {"scenario": found[0], "seconds": round(found[1], 2), "poll_interval": found[2]}
            if found
            else None
        )

    return {
        "faults_tried": sum(FAULTS.values()),
        "faults": dict(sorted(FAULTS.items())),
        "crashes_survived": sum(CRASHES.values()),
        "crashes": dict(sorted(CRASHES.items())),
        "inputs_fuzzed": sum(FUZZ.values()),
        "fuzz": dict(sorted(FUZZ.items())),
        **CALLS,
        "deadline_checks": len(DEADLINES),
        "worst_wait_overshoot": worst("wait"),
        "worst_task_end_overshoot": worst("task end"),
    }


def report(write: Any) -> None:
    """Print the figures (``write`` takes one line) and save them where ``$FUSE_FIGURES_JSON`` says."""
    figures = summary()
    if not any((figures["faults_tried"], figures["crashes_survived"], figures["inputs_fuzzed"])):
        return
    write(
        f"faults tried: {figures['faults_tried']}, crashes survived: {figures['crashes_survived']}, "
        f"inputs fuzzed: {figures['inputs_fuzzed']}, tasks checked: {figures['tasks_checked']}, "
        f"calls queued: {figures['calls_queued']}, calls doubled: {figures['calls_doubled']}"
    )
    for name in ("faults", "crashes", "fuzz"):
        if figures[name]:
            write(f"  {name}: " + ", ".join(f"{k}={v}" for k, v in figures[name].items()))
    for key, what in (("worst_wait_overshoot", "wait ended"), ("worst_task_end_overshoot", "task end date")):
        if figures[key]:
            worst = figures[key]
            write(
                f"  deadlines ({figures['deadline_checks']} checked): worst {what} {worst['seconds']} s after "
                f"the deadline ({worst['scenario']}, poll interval {worst['poll_interval']} s)"
            )
    path = os.environ.get("FUSE_FIGURES_JSON")
    if path:
        with open(path, "w") as out:
            json.dump(figures, out, indent=2)

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
CALLS = Counter({"tasks_checked": 0, "calls_intended": 0, "calls_queued": 0, "calls_doubled": 0})
#: The cluster suite (tests/cluster): scenarios driven to their end, every queued call's outcome compared
#: with the simulator's, how long a second triggerer took to take a dead one's waits over, wall time.
CLUSTER: dict[str, Any] = {
    "scenarios": Counter(),
    "outcomes_checked": 0,
    "outcomes_lost": 0,
    "takeovers": [],
    "component_restarts": Counter(),
    "wall_seconds": None,
}
FUZZ: Counter[str] = Counter()
DEADLINES: list[tuple[str, float, float, str]] = []
#: Seconds from the api-server accepting a call's result_url callback to its task's end (tests/stack).
CALLBACK_DELAYS: list[float] = []


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


def callback_to_success(seconds: float) -> None:
    """A task ended ``seconds`` after the api-server accepted its call's callback."""
    CALLBACK_DELAYS.append(seconds)


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
    CALLS["calls_intended"] += expected
    CALLS["calls_queued"] += queued
    CALLS["calls_doubled"] += max(0, queued - expected)
    assert queued <= expected, f"{queued} calls queued where at most {expected} may be: a person rang twice"
    return queued


def check_campaign_rows(
    entries: Iterable[Mapping[str, Any]] | Iterable[Any], intended: int | None = None
) -> list[str]:
    """The destinations of every bulk upload that took effect; a destination twice is a doubled call.

    ``intended``: the calls the campaign means to queue (its valid rows), counted when given.
    """
    from airflow_provider_fuse import protocol

    rows: list[str] = []
    for entry in entries:
        fields = entry if isinstance(entry, Mapping) else vars(entry)
        if fields["endpoint"] == "bulk_queue" and fields["processed"]:
            rows += [destination for destination, _ in protocol.parse_bulk_csv(fields["form"]["csv"])]
    CALLS["tasks_checked"] += 1
    CALLS["calls_intended"] += intended or 0
    CALLS["calls_queued"] += len(rows)
    CALLS["calls_doubled"] += len(rows) - len(set(rows))
    assert len(rows) == len(set(rows)), f"a campaign queued a destination twice: {sorted(rows)}"
    return rows


def cluster_scenario(name: str) -> None:
    """One cluster scenario driven to its end (ledger and every outcome checked)."""
    CLUSTER["scenarios"][name] += 1


def check_outcomes(recorded: Mapping[str, Any], truth: Mapping[str, Any]) -> int:
    """Compare each queued call's outcome as its task recorded it with the simulator's; fails on a loss.

    Both map a call id to its outcome (e.g. ``(status, attempts)``); a call missing from ``recorded``
    or recorded otherwise is an outcome lost. Returns the number of outcomes checked.
    """
    lost = sorted(call_id for call_id, outcome in truth.items() if recorded.get(call_id) != outcome)
    CLUSTER["outcomes_checked"] += len(truth)
    CLUSTER["outcomes_lost"] += len(lost)
    examples = {call_id: (recorded.get(call_id), truth[call_id]) for call_id in lost[:5]}
    assert not lost, f"{len(lost)} of {len(truth)} outcomes lost or wrong (recorded, real): {examples}"
    return len(truth)


def check_outcome_totals(recorded: Mapping[str, int], truth: Iterable[str]) -> int:
    """A campaign's totals by status against the simulator's statuses of its calls; fails on a loss.

    Each call the totals do not account for under its real status is an outcome lost.
    """
    real = Counter(truth)
    lost = sum(max(0, count - int(recorded.get(status, 0))) for status, count in real.items())
    CLUSTER["outcomes_checked"] += sum(real.values())
    CLUSTER["outcomes_lost"] += lost
    assert not lost, (
        f"{lost} of {sum(real.values())} outcomes lost or wrong: recorded {dict(recorded)}, real {dict(real)}"
    )
    return sum(real.values())


def takeover(triggers: int, calls: int, seconds: float, first_poll: float) -> None:
    """A triggerer killed holding ``triggers`` waits on ``calls`` calls: the first was polled again by
    another triggerer ``first_poll`` seconds later, the last ``seconds`` later."""
    CLUSTER["takeovers"].append(
        {
            "triggers": triggers,
            "calls": calls,
            "seconds": round(seconds, 1),
            "first_poll": round(first_poll, 1),
        }
    )


def component_restarts(names: Iterable[str]) -> None:
    """Components that exited by themselves (a database outage) and were started again."""
    CLUSTER["component_restarts"].update(names)


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
        "callback_to_success_seconds": round(max(CALLBACK_DELAYS), 1) if CALLBACK_DELAYS else None,
        **cluster_summary(),
    }


def cluster_summary() -> dict[str, Any]:
    """The cluster suite's figures; empty when it did not run."""
    if not CLUSTER["scenarios"]:
        return {}
    return {
        "cluster_scenarios_run": sum(CLUSTER["scenarios"].values()),
        "cluster_scenarios": dict(sorted(CLUSTER["scenarios"].items())),
        "outcomes_checked": CLUSTER["outcomes_checked"],
        "outcomes_lost": CLUSTER["outcomes_lost"],
        "triggerer_takeovers": list(CLUSTER["takeovers"]),
        "component_restarts": dict(sorted(CLUSTER["component_restarts"].items())),
        "wall_seconds": CLUSTER["wall_seconds"],
    }


def report(write: Any) -> None:
    """Print the figures (``write`` takes one line) and save them where ``$FUSE_FIGURES_JSON`` says."""
    figures = summary()
    suites = bool(figures["faults_tried"] or figures["crashes_survived"] or figures["inputs_fuzzed"])
    if not (suites or figures.get("cluster_scenarios_run")):
        return
    if suites:
        _report_suites(figures, write)
    if figures.get("cluster_scenarios_run"):
        _report_cluster(figures, write)
    path = os.environ.get("FUSE_FIGURES_JSON")
    if path:
        with open(path, "w") as out:
            json.dump(figures, out, indent=2)


def _report_suites(figures: Mapping[str, Any], write: Any) -> None:
    write(
        f"faults tried: {figures['faults_tried']}, crashes survived: {figures['crashes_survived']}, "
        f"inputs fuzzed: {figures['inputs_fuzzed']}, tasks checked: {figures['tasks_checked']}, "
        f"calls queued: {figures['calls_queued']}, calls doubled: {figures['calls_doubled']}"
    )
    for name in ("faults", "crashes", "fuzz"):
        if figures[name]:
            write(f"  {name}: " + ", ".join(f"{k}={v}" for k, v in figures[name].items()))
    if figures["callback_to_success_seconds"] is not None:
        write(f"  callback accepted to task success: {figures['callback_to_success_seconds']} s at most")
    for key, what in (("worst_wait_overshoot", "wait ended"), ("worst_task_end_overshoot", "task end date")):
        if figures[key]:
            worst = figures[key]
            write(
                f"  deadlines ({figures['deadline_checks']} checked): worst {what} {worst['seconds']} s after "
                f"the deadline ({worst['scenario']}, poll interval {worst['poll_interval']} s)"
            )


def _report_cluster(figures: Mapping[str, Any], write: Any) -> None:
    wall = figures["wall_seconds"]
    write(
        f"cluster scenarios run: {figures['cluster_scenarios_run']}, calls intended: {figures['calls_intended']:,}, "
        f"calls queued: {figures['calls_queued']:,}, calls doubled: {figures['calls_doubled']}, "
        f"outcomes checked: {figures['outcomes_checked']:,}, outcomes lost: {figures['outcomes_lost']}"
        + (f", wall time: {wall:.0f} s" if wall is not None else "")
    )
    write("  scenarios: " + ", ".join(f"{k}={v}" for k, v in figures["cluster_scenarios"].items()))
    for takeover in figures["triggerer_takeovers"]:
        write(
            f"  triggerer takeover: {takeover['triggers']} waits ({takeover['calls']:,} calls) polled by the "
            f"other triggerer {takeover['first_poll']} to {takeover['seconds']} s after the SIGKILL"
        )
    if figures["component_restarts"]:
        write(
            "  components restarted after exiting: "
            + ", ".join(f"{k}={v}" for k, v in figures["component_restarts"].items())
        )

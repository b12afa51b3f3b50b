"""Crashes where production runs: PostgreSQL, Redis, Celery, two schedulers, two triggerers.

One cluster for the module (:class:`~tests.cluster.cluster.AirflowCluster`; it takes a minute or
two to start), and three phases on it, one after the other (in the order of the tests), each a
module fixture that drives its scenarios to their end and returns the runs; the tests then read each run back through the REST API and check it against
the simulator's ledger: exactly one queue request per intended call (a number queued twice is a person
rung twice), and every queued call's outcome recorded on its task as the simulator ended it.

1. ``crashes``: a Celery worker SIGKILLed (its whole process tree) right after a task queued its
   call, another while a campaign task waits out a 429 between two bulk uploads, and the scheduler
   that queued them SIGKILLed too (scenarios 1, 5 and 3).
2. ``outages``: PostgreSQL restarted while calls are waited for in workers and in the triggerer,
   then Redis restarted while a run is being queued to it (scenario 4).
3. ``takeover``: the triggerer holding 200 single-call waits and a 10,000-call campaign SIGKILLed;
   the other triggerer takes them over (scenario 2); how long that takes is a figure.

Each simulator's clock is held while its scenario is being set up (calls stay queued, however slow
the machine), then let go: no test races a call's timeline.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import figures
from tests.cluster.cluster import (
    TASK_HEARTBEAT_TIMEOUT,
    TRIGGERER_HEALTH_THRESHOLD,
    TRIGGERERS,
    AirflowCluster,
)
from tests.cluster.dags.fuse_cluster_dags import CALL_NUMBER, STEADY_NUMBERS, WAIT_NUMBERS
from tests.cluster.servers import Postgres, Redis, listening
from tests.stack.stack import DEVELOPER_KEY, SimControl, SimHostProcess

pytestmark = pytest.mark.timeout(1200)  # the first test of a phase waits for the whole phase

HERE = Path(__file__).parent
DAGS = [HERE / "dags" / "fuse_cluster_dags.py"]
SPEED = 600.0
#: One simulator per scenario (its own ledger), each behind connection ``fuse_<name>``.
SIMS = ("crash_call", "crash_campaign", "steady_a", "steady_b1", "steady_b2", "waits", "campaign")
EXTRAS = {"request_timeout": 5, "retry_limit": 3}
CRASH_WORKER, CRASH_CAMPAIGN = "fuse_cluster_call", "fuse_cluster_campaign_crash"
STEADY, WAITS, CAMPAIGN = "fuse_cluster_steady", "fuse_cluster_waits", "fuse_cluster_campaign"
CAMPAIGN_CALLS = 10_000
#: What a phase may take on a busy 2-core machine: ten times what a quiet one needs, or more.
SET_UP, FINISH = 300, 600
#: The callees' outcomes, by row modulo 20; the rest answer the first attempt. A single-call task
#: whose call failed would fail (and be retried, failing again), so the waits' callees all answer.
WAIT_OUTCOMES = {0: "busy:1", 1: "busy:1", 2: "busy:1"}
CAMPAIGN_OUTCOMES = {**WAIT_OUTCOMES, 3: "never", 4: "never", 5: "reject"}


@dataclass
class Run:
    """One DAG run, the simulator its calls go to, and what the phase did to it."""

    dag_id: str
    run_id: str
    sim: SimControl
    notes: dict[str, Any] = field(default_factory=dict)


# --- the cluster ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuse-cluster")


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Postgres, Redis]]:
    postgres, redis = Postgres(), Redis()
    try:
        postgres.start()
        redis.start()
        yield postgres, redis
    finally:
        postgres.remove()
        redis.remove()


@pytest.fixture(scope="module")
def simhost(home: Path) -> Iterator[SimHostProcess]:
    host = SimHostProcess(SIMS, home, SPEED)
    try:
        yield host
    finally:
        host.stop()


@pytest.fixture(scope="module")
def cluster(home: Path, servers: tuple[Postgres, Redis], simhost: SimHostProcess) -> Iterator[AirflowCluster]:
    env = {f"AIRFLOW_CONN_FUSE_{name.upper()}": simhost.sim(name).connection(**EXTRAS) for name in SIMS}
    airflow = AirflowCluster(home, DAGS, env, *servers)
    try:
        started = time.monotonic()
        airflow.start(timeout=SET_UP)
        dag_ids = (CRASH_WORKER, CRASH_CAMPAIGN, STEADY, WAITS, CAMPAIGN)
        airflow.wait_for_dags(dag_ids, timeout=SET_UP)
        for dag_id in dag_ids:
            airflow.unpause(dag_id)
        print(f"cluster up and DAGs parsed in {time.monotonic() - started:.0f} s (AIRFLOW_HOME={home})")
        yield airflow
    finally:
        airflow.stop()


# --- reading runs back ------------------------------------------------------------------------


def number_of(entry: dict[str, Any]) -> str:
    return str(entry["form"]["phone_number"]).removeprefix("tel:")


def queued_by_number(sim: SimControl) -> dict[str, list[dict[str, Any]]]:
    """The simulator's queue requests, by destination."""
    found: dict[str, list[dict[str, Any]]] = {}
    for entry in sim.ledger("queue"):
        found.setdefault(number_of(entry), []).append(entry)
    return found


def states(cluster: AirflowCluster, run: Run) -> list[str | None]:
    return [ti["state"] for ti in cluster.task_instances(run.dag_id, run.run_id)]


def finish(cluster: AirflowCluster, *runs: Run, timeout: float = FINISH) -> None:
    for run in runs:
        cluster.wait(
            f"run {run.run_id} of {run.dag_id} to finish",
            lambda run=run: cluster.run_state(run.dag_id, run.run_id) in ("success", "failed"),
            timeout,
        )


def check_single_calls(cluster: AirflowCluster, run: Run, numbers: dict[tuple[str, int], str]) -> None:
    """Each task instance (task id, map index) queued one call to its number; its result is the call's.

    The result (XCom) must name the call the ledger holds for that number, with the status and the
    attempts the simulator ended it with.
    """
    by_number = queued_by_number(run.sim)
    truth = run.sim.calls()
    recorded: dict[str, Any] = {}
    for ti in cluster.task_instances(run.dag_id, run.run_id):
        entries = by_number.get(numbers[ti["task_id"], ti["map_index"]], [])
        assert figures.check_calls(entries) == 1, f"{ti['task_id']}[{ti['map_index']}] queued no call"
        assert ti["state"] == "success", f"{ti['task_id']}[{ti['map_index']}] ended {ti['state']}"
        result = cluster.xcom(run.dag_id, run.run_id, ti["task_id"], map_index=ti["map_index"])
        if result["call_id"] == entries[0]["call_ids"][0]:
            recorded[result["call_id"]] = (result["status"], result["attempts"])
    figures.check_outcomes(
        recorded, {call_id: truth[call_id] for e in by_number.values() for call_id in e[0]["call_ids"]}
    )


def check_campaign(cluster: AirflowCluster, run: Run, rows: int) -> dict[str, Any]:
    """Every row uploaded once; the result's totals are the simulator's outcomes of those calls."""
    uploads = run.sim.ledger("bulk_queue")
    queued = figures.check_campaign_rows(uploads, intended=rows)
    assert len(queued) == rows, f"{len(queued)} of {rows} rows queued"
    result = cluster.xcom(run.dag_id, run.run_id, "call")
    figures.check_outcome_totals(result["totals"], [status for status, _ in run.sim.calls().values()])
    assert result["finished"] and sum(result["totals"].values()) == rows
    return dict(result)


def script(sim: SimControl, numbers: list[str], outcomes: dict[int, str]) -> None:
    """Give the callees their outcomes by row (``outcomes``: by row modulo 20)."""
    for outcome in sorted(set(outcomes.values())):
        sim.script_many([n for i, n in enumerate(numbers) if outcomes.get(i % 20) == outcome], outcome)


def steady_numbers() -> dict[tuple[str, int], str]:
    return {(task, i): number for task, numbers in STEADY_NUMBERS.items() for i, number in enumerate(numbers)}


def steady_in_flight(cluster: AirflowCluster, run: Run) -> bool:
    """Every call of a steady run queued, each task waiting for it (in its worker or deferred)."""
    queued = sum(e["processed"] for e in run.sim.ledger("queue"))
    return queued == sum(map(len, STEADY_NUMBERS.values())) and all(
        s in ("running", "deferred") for s in states(cluster, run)
    )


# --- phase 1: workers and a scheduler killed (scenarios 1, 5, 3) -------------------------------


@pytest.fixture(scope="module")
def crashes(cluster: AirflowCluster, simhost: SimHostProcess) -> dict[str, Run]:
    """The steady run first, in flight (so that no kill lands inside one of its queue requests); then
    the call (only worker-1 takes it) and the campaign (only worker-2), each worker killed as its task
    gets to the point, worker-1 with the scheduler that queued the call."""
    sims = {name: simhost.sim(name) for name in ("crash_call", "crash_campaign", "steady_a")}
    for sim in sims.values():
        sim.hold()
    uploads = sims["crash_campaign"]  # the first upload goes through, the second is refused 429
    uploads.inject("bulk_queue", "slow", count=1, delay=0.01)
    uploads.inject("bulk_queue", "429", count=1, retry_after=60)  # the longest wait the hook honours
    runs = {"steady": Run(STEADY, cluster.trigger(STEADY, {"conn": "fuse_steady_a"}), sims["steady_a"])}
    cluster.wait(
        "every call of the run queued and waited for",
        lambda: steady_in_flight(cluster, runs["steady"]),
        SET_UP,
    )
    runs["worker"] = worker = Run(CRASH_WORKER, cluster.trigger(CRASH_WORKER), sims["crash_call"])
    runs["campaign"] = campaign = Run(CRASH_CAMPAIGN, cluster.trigger(CRASH_CAMPAIGN), uploads)

    def call_armed() -> bool:
        return "fuse_call_id" in cluster.state_store(worker.dag_id, worker.run_id, "call")

    def campaign_armed() -> bool:
        return [e["fault"] for e in uploads.ledger("bulk_queue")] == ["slow", "429"]

    def kill(run: Run) -> None:
        ti = cluster.task_instance(run.dag_id, run.run_id, "call")
        assert ti["state"] == "running", f"{run.dag_id} is {ti['state']} at its kill"
        run.notes.update(killed_at=time.time(), first_try=ti, worker=ti["hostname"])
        cluster.restart_component(ti["hostname"])  # the whole tree: Celery, its pool, supervisor, task

    def kill_call() -> None:
        worker.notes["stored"] = cluster.state_store(worker.dag_id, worker.run_id, "call")
        runs["steady"].notes["scheduler"] = cluster.queued_by(
            cluster.task_instance(worker.dag_id, worker.run_id, "call")["id"]
        )
        kill(worker)
        cluster.kill_component(runs["steady"].notes["scheduler"]["hostname"])

    steps = {"call": (call_armed, kill_call), "campaign": (campaign_armed, lambda: kill(campaign))}

    def armed() -> bool:
        """Each kill as soon as its task gets to the point (the campaign's 429 lasts a minute)."""
        for name, (condition, action) in list(steps.items()):
            if condition():
                action()
                del steps[name]
        return not steps

    cluster.wait("the call queued and the campaign between two uploads", armed, SET_UP)
    scheduler = runs["steady"].notes["scheduler"]

    def scheduler_declared_dead() -> bool:
        return any(
            j["id"] == scheduler["id"] and j["state"] == "failed" for j in cluster.jobs("SchedulerJob")
        )

    cluster.wait("the other scheduler to declare the killed one dead", scheduler_declared_dead, SET_UP)
    runs["steady"].notes["declared_dead_after"] = time.time() - worker.notes["killed_at"]
    cluster.start_component(scheduler["hostname"])

    def resumed() -> bool:
        return (
            bool(worker.sim.ledger("status", since=worker.notes["killed_at"]))
            and sum(e["processed"] for e in uploads.ledger("bulk_queue")) == 3
            and steady_in_flight(cluster, runs["steady"])
        )

    cluster.wait("the retries to resume the call and the campaign", resumed, SET_UP + TASK_HEARTBEAT_TIMEOUT)
    resumed_after = time.time() - worker.notes["killed_at"]
    for sim in sims.values():
        sim.release()
    finish(cluster, *runs.values())
    print(
        f"phase 1: scheduler declared dead {runs['steady'].notes['declared_dead_after']:.0f} s and the retries "
        f"resumed {resumed_after:.0f} s after the first SIGKILL; done {time.time() - worker.notes['killed_at']:.0f} s after"
    )
    return runs


def test_a_celery_worker_killed_after_queueing_resumes_the_call(
    cluster: AirflowCluster, crashes: dict[str, Run]
) -> None:
    """Scenario 1: the try dies with its worker; the scheduler fails it by heartbeat; the retry, on a
    worker, finds the call id in the task state store and waits for that call."""
    run = crashes["worker"]
    ti = cluster.task_instance(run.dag_id, run.run_id, "call")
    assert ti["state"] == "success" and ti["try_number"] >= 2
    first, *_ = cluster.tries(run.dag_id, run.run_id, "call")
    assert first["hostname"] == run.notes["worker"], "the first try ran on the worker killed"
    (queued,) = run.sim.ledger("queue")
    call_id = queued["call_ids"][0]
    assert run.notes["stored"]["fuse_call_id"]["call_id"] == call_id, "killed after the call id was stored"
    assert f"Resuming Fuse call {call_id}" in cluster.log(run.dag_id, run.run_id, "call", ti["try_number"])
    check_single_calls(cluster, run, {("call", -1): CALL_NUMBER})
    figures.cluster_scenario("Celery worker SIGKILLed after queueing")


def test_a_campaign_whose_worker_is_killed_between_uploads_uploads_each_chunk_once(
    cluster: AirflowCluster, crashes: dict[str, Run]
) -> None:
    """Scenario 5: killed while waiting out a 429 on its second upload of three (chunk 1 queued); the
    retry resumes chunk 1 and, with ``reupload_unanswered=True``, uploads chunks 2 and 3."""
    run = crashes["campaign"]
    ti = cluster.task_instance(run.dag_id, run.run_id, "call")
    assert ti["state"] == "success" and ti["try_number"] >= 2
    refused = [e for e in run.sim.ledger("bulk_queue") if e["fault"] == "429"]
    assert len(refused) == 1 and refused[0]["time"] < run.notes["killed_at"]
    assert "Resuming: 1 of 3 chunks" in cluster.log(run.dag_id, run.run_id, "call", ti["try_number"])
    check_campaign(cluster, run, rows=6)
    figures.cluster_scenario("campaign task's Celery worker SIGKILLed between bulk uploads")


def test_the_scheduler_that_queued_the_tasks_killed_mid_run(
    cluster: AirflowCluster, crashes: dict[str, Run]
) -> None:
    """Scenario 3: the other scheduler declares it dead, adopts or resets what it had queued, and every
    call of the run in flight (three waited for in workers, three deferred) is queued once and ends as
    the simulator ended it."""
    run = crashes["steady"]
    (job,) = [j for j in cluster.jobs("SchedulerJob") if j["id"] == run.notes["scheduler"]["id"]]
    assert job["state"] == "failed", "the other scheduler declared the killed one dead"
    check_single_calls(cluster, run, steady_numbers())
    figures.cluster_scenario("active scheduler SIGKILLed mid-run")


# --- phase 2: PostgreSQL and Redis restarted (scenario 4) --------------------------------------


@pytest.fixture(scope="module")
def outages(
    cluster: AirflowCluster, simhost: SimHostProcess, servers: tuple[Postgres, Redis]
) -> dict[str, Run]:
    postgres, redis = servers
    sims = {name: simhost.sim(name) for name in ("steady_b1", "steady_b2")}
    for sim in sims.values():
        sim.hold()
    first = Run(STEADY, cluster.trigger(STEADY, {"conn": "fuse_steady_b1"}), sims["steady_b1"])
    cluster.wait(
        "every call of the run queued and waited for", lambda: steady_in_flight(cluster, first), SET_UP
    )
    postgres.restart()
    first.notes["restarted_at"] = time.time()
    cluster.wait("the cluster to be healthy after the PostgreSQL restart", cluster.healthy, SET_UP)
    second = Run(STEADY, cluster.trigger(STEADY, {"conn": "fuse_steady_b2"}), sims["steady_b2"])
    cluster.wait(
        "the second run's first task queued",
        lambda: any(s not in (None, "scheduled") for s in states(cluster, second)),
        SET_UP,
    )
    redis.restart()
    second.notes["restarted_at"] = time.time()
    cluster.wait("every call of the second run queued", lambda: steady_in_flight(cluster, second), SET_UP)
    for sim in sims.values():
        sim.release()
    finish(cluster, first, second)
    figures.component_restarts(cluster.revived)
    print(
        f"phase 2: done {time.time() - first.notes['restarted_at']:.0f} s after the PostgreSQL restart; "
        f"components started again: {cluster.revived}"
    )
    return {"postgres": first, "redis": second}


@pytest.mark.parametrize("server", ["postgres", "redis"])
def test_a_restart_of_the_database_or_the_broker_mid_run(
    cluster: AirflowCluster, outages: dict[str, Run], servers: tuple[Postgres, Redis], server: str
) -> None:
    """Scenario 4: PostgreSQL restarted with six calls in flight (three waited for in workers, three
    deferred); Redis restarted while a run is being queued (its append-only file keeps the queue)."""
    run = outages[server]
    assert {"postgres": servers[0], "redis": servers[1]}[server].restarts == 1
    check_single_calls(cluster, run, steady_numbers())
    figures.cluster_scenario(f"{'PostgreSQL' if server == 'postgres' else 'Redis'} restarted mid-run")


# --- phase 3: the triggerer holding 200 waits and a 10,000-call campaign killed (scenario 2) ----


@pytest.fixture(scope="module")
def takeover(cluster: AirflowCluster, simhost: SimHostProcess, home: Path) -> dict[str, Run]:
    first, second = TRIGGERERS
    cluster.stop_component(second)  # so that the first holds every wait (started again before the kill)
    waits_sim, campaign_sim = simhost.sim("waits"), simhost.sim("campaign")
    for sim in (waits_sim, campaign_sim):
        sim.hold()
    script(waits_sim, WAIT_NUMBERS, WAIT_OUTCOMES)
    numbers = [f"+1617555{n:04d}" for n in range(CAMPAIGN_CALLS)]
    script(campaign_sim, numbers, CAMPAIGN_OUTCOMES)
    calls_file = home / "campaign.csv"
    with calls_file.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["phone_number", "row"])
        writer.writerows([number, i] for i, number in enumerate(numbers))

    def holder() -> int | None:
        job = cluster.alive_job("TriggererJob", first, TRIGGERER_HEALTH_THRESHOLD)
        return None if job is None else int(job["id"])

    def deferred_on(run: Run, job_id: int | None) -> bool:
        tis = cluster.task_instances(run.dag_id, run.run_id)
        return (
            job_id is not None
            and bool(tis)
            and all(
                ti["state"] == "deferred" and (ti["trigger"] or {}).get("triggerer_id") == job_id
                for ti in tis
            )
        )

    started = time.time()
    waits = Run(WAITS, cluster.trigger(WAITS), waits_sim)
    cluster.wait(
        f"{len(WAIT_NUMBERS)} waits deferred to {first}", lambda: deferred_on(waits, holder()), 3 * FINISH
    )
    campaign = Run(CAMPAIGN, cluster.trigger(CAMPAIGN, {"calls_file": str(calls_file)}), campaign_sim)
    cluster.wait(
        f"the campaign deferred to {first} and tracking its calls",
        lambda: deferred_on(campaign, holder()) and bool(campaign_sim.ledger("status")),
        SET_UP,
    )
    print(f"phase 3: 200 waits and the campaign deferred to {first} in {time.time() - started:.0f} s")
    cluster.start_component(second)
    cluster.wait(
        f"{second} to be up",
        lambda: cluster.alive_job("TriggererJob", second, TRIGGERER_HEALTH_THRESHOLD),
        SET_UP,
    )
    wait_ids = {i for e in waits_sim.ledger("queue") for i in e["call_ids"]}
    killed_at = time.time()
    cluster.kill_component(first)
    for sim in (waits_sim, campaign_sim):
        sim.release()

    def first_polls() -> dict[str, float] | None:
        polled: dict[str, float] = {}
        for entry in waits_sim.ledger("status", since=killed_at):
            for call_id in entry["call_ids"]:
                polled.setdefault(call_id, entry["time"])
        return polled if wait_ids <= polled.keys() else None

    polled = cluster.wait("every wait polled by the other triggerer", first_polls, SET_UP)
    (campaign_poll, *_) = cluster.wait(
        "the campaign polled by the other triggerer",
        lambda: campaign_sim.ledger("status", since=killed_at),
        SET_UP,
    )
    seconds = max(*polled.values(), campaign_poll["time"]) - killed_at
    figures.takeover(
        len(wait_ids) + 1, len(wait_ids) + CAMPAIGN_CALLS, seconds, min(polled.values()) - killed_at
    )
    cluster.start_component(first)
    waits.notes.update(killed_at=killed_at, takeover=seconds, polled_again=len(polled.keys() & wait_ids))
    finish(cluster, waits, campaign, timeout=3 * FINISH)
    print(
        f"phase 3: takeover {seconds:.1f} s; every task done {time.time() - killed_at:.0f} s after the SIGKILL"
    )
    return {"waits": waits, "campaign": campaign}


def test_the_other_triggerer_takes_200_waits_over_with_their_real_outcomes(
    cluster: AirflowCluster, takeover: dict[str, Run]
) -> None:
    """Scenario 2: every single-call wait ends with its call's outcome (busy once: 2 attempts)."""
    run = takeover["waits"]
    assert run.notes["polled_again"] == len(WAIT_NUMBERS), "every wait was polled after the SIGKILL"
    check_single_calls(cluster, run, {("call", i): number for i, number in enumerate(WAIT_NUMBERS)})
    figures.cluster_scenario("triggerer holding 200 waits and a 10,000-call campaign SIGKILLed")


def test_the_other_triggerer_finishes_the_10000_call_campaign(
    cluster: AirflowCluster, takeover: dict[str, Run]
) -> None:
    run = takeover["campaign"]
    ti = cluster.task_instance(run.dag_id, run.run_id, "call")
    assert (ti["state"], ti["try_number"]) == ("success", 1)
    result = check_campaign(cluster, run, rows=CAMPAIGN_CALLS)
    assert set(result["totals"]) == {"completed", "failed", "rejected"}


# --- hygiene and clean-up ---------------------------------------------------------------------


def test_no_log_of_the_cluster_holds_the_developer_key(cluster: AirflowCluster, home: Path) -> None:
    logs = [p for p in home.rglob("*.log") if p.is_file() and p.name != "simhost.log"]
    assert any("dag_id=" in str(p) for p in logs), "task logs were written to the shared AIRFLOW_HOME"
    leaked = [str(p.relative_to(home)) for p in logs if DEVELOPER_KEY in p.read_text(errors="replace")]
    assert leaked == []


def test_stopping_the_cluster_leaves_nothing_running_or_listening(
    cluster: AirflowCluster,
    simhost: SimHostProcess,
    servers: tuple[Postgres, Redis],
    takeover: dict[str, Run],
) -> None:
    before = cluster.processes()
    assert len(before) >= len(cluster.components)
    ports = [
        cluster.port,
        *(server.port for server in servers),
        simhost.control_port,
        *simhost.ports.values(),
    ]
    cluster.stop()
    for server in servers:
        server.stop()
    simhost.stop()
    assert cluster.sweep() == [], "processes of this AIRFLOW_HOME outlived stop()"
    assert all(not p.is_running() or p.status() == "zombie" for p in before)
    assert [port for port in ports if listening(port)] == []

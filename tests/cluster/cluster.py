"""Airflow as production runs it, on one machine: PostgreSQL, Redis, Celery, two of everything that fails over.

``AirflowCluster`` is the stack of tests/stack (same process handling, REST access and clean-up) with
another topology: two schedulers, two triggerers, the dag-processor, the api-server and two Celery
workers, each its own process; PostgreSQL as the metadata database and Redis as the broker
(:mod:`tests.cluster.servers`). Each component names itself through ``[core] hostname_callable``
(``scheduler-1``, ``worker-2``...), so that the REST API tells which worker ran a try, which
triggerer holds a trigger and which scheduler queued a task instance.

Timings are cut for a test (a dead component is noticed within seconds, not minutes); each is
Airflow's own code path, and the tests derive their waits from these values.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from tests.cluster.servers import Postgres, Redis
from tests.stack.stack import BIN, AirflowStack, ProcessGroup, wait_for

T = TypeVar("T")

SCHEDULERS = ("scheduler-1", "scheduler-2")
TRIGGERERS = ("triggerer-1", "triggerer-2")
#: Each worker takes Airflow's default queue and one of its own (the crash scenarios' tasks).
WORKERS = {"worker-1": "default,crash_call", "worker-2": "default,crash_campaign"}
#: Task slots of each Celery worker (Celery's default is one per core, Airflow's 16).
WORKER_CONCURRENCY = 4
#: A running task whose heartbeat is older than this is failed by a scheduler (Airflow: 300 s).
TASK_HEARTBEAT_TIMEOUT = 30
#: A scheduler silent this long is dead for the others, which adopt its tasks (Airflow: 30 s) ...
SCHEDULER_HEALTH_THRESHOLD = 15
#: ... which they check every this many seconds (Airflow: 300 s).
ORPHAN_CHECK_INTERVAL = 5
#: A triggerer silent this long loses its triggers to the others (Airflow: 30 s).
TRIGGERER_HEALTH_THRESHOLD = 10
HOSTNAME_MODULE = "fuse_cluster_hostname"
CELERY_CONFIG_MODULE = "fuse_cluster_celery"


class AirflowCluster(AirflowStack):
    """Two schedulers, two triggerers, two Celery workers, dag-processor and api-server; PostgreSQL, Redis."""

    components = ("api-server", "dag-processor", *SCHEDULERS, *TRIGGERERS, *WORKERS)

    def __init__(
        self,
        home: Path,
        dag_sources: Iterable[Path],
        env: Mapping[str, str],
        postgres: Postgres,
        redis: Redis,
    ) -> None:
        self.postgres, self.redis = postgres, redis
        self.revived: list[str] = []
        super().__init__(home, dag_sources, env)

    def topology_env(self) -> dict[str, str]:
        config = self.home / "config"
        (config / f"{HOSTNAME_MODULE}.py").write_text(
            '"""Each cluster component\'s name, as its hostname (``[core] hostname_callable``)."""\n\n'
            "import os\n\n\n"
            "def hostname() -> str:\n"
            '    return os.environ["FUSE_CLUSTER_COMPONENT"]\n'
        )
        # Celery's prefetch reduction after a broker reconnect: a worker busy with long tasks when Redis
        # restarted cut its prefetch to 1 and never fetched again (the suite's first Redis restart left
        # every later task queued; celery/celery#8990, #9512), so it is off, as production should have it.
        (config / f"{CELERY_CONFIG_MODULE}.py").write_text(
            '"""Airflow\'s Celery settings, without the prefetch reduction after a broker reconnect."""\n\n'
            "from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG\n\n"
            'CELERY_CONFIG = {**DEFAULT_CELERY_CONFIG, "worker_enable_prefetch_count_reduction": False}\n'
        )
        return {
            "PYTHONPATH": str(config),
            "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": f"{CELERY_CONFIG_MODULE}.CELERY_CONFIG",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{HOSTNAME_MODULE}.hostname",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url,
            "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.postgres.url}",
            # Ten processes with pools of their own: smaller pools than Airflow's 5 + 10 each.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "10",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(TASK_HEARTBEAT_TIMEOUT),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": str(SCHEDULER_HEALTH_THRESHOLD),
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": str(ORPHAN_CHECK_INTERVAL),
            # A task left queued (its broker message lost) is sent again after 3 minutes, not 10.
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "180",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_HEALTH_THRESHOLD),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "512",
        }

    def prepare_database(self) -> None:
        """PostgreSQL needs nothing after the migration."""

    def component_argv(self, name: str) -> list[str]:
        airflow = str(BIN / "airflow")
        if name in SCHEDULERS:
            return [airflow, "scheduler"]
        if name in TRIGGERERS:  # two log servers on one machine would fight for port 8794
            return [airflow, "triggerer", "--skip-serve-logs"]
        if name in WORKERS:  # ... and for 8793; task logs are files in the shared AIRFLOW_HOME
            return [
                airflow,
                "celery",
                "worker",
                "--celery-hostname",
                f"{name}@fuse-cluster",
                "--queues",
                WORKERS[name],
                "--concurrency",
                str(WORKER_CONCURRENCY),
                "--skip-serve-logs",
                "--without-mingle",
                "--without-gossip",
            ]
        return super().component_argv(name)

    def component_env(self, name: str) -> dict[str, str]:
        return {"FUSE_CLUSTER_COMPONENT": name}

    # --- what a process supervisor (systemd, Kubernetes) would do ---

    def revive(self) -> list[str]:
        """Start again every component whose process exited by itself (a database outage may end one)."""
        revived = [name for name, group in self.groups.items() if not group.alive()]
        for name in revived:
            self.retired.append(self.groups.pop(name))
            self.start_component(name)
        self.revived += revived
        return revived

    def wait(self, what: str, predicate: Callable[[], T | None], timeout: float, interval: float = 1.0) -> T:
        """``wait_for``, starting again (as a supervisor would) any component that exits meanwhile."""

        def check() -> T | None:
            self.revive()
            return predicate()

        return wait_for(what, check, timeout, interval)

    def stop_component(self, name: str) -> None:
        """Stop a component the clean way (SIGTERM), as a rolling restart does."""
        group = self.groups.pop(name)
        group.stop(grace=60)
        self.retired.append(group)

    def restart_component(self, name: str) -> ProcessGroup:
        """SIGKILL the component's whole process tree (as a lost machine would), then start it again."""
        self.kill_component(name)
        return self.start_component(name)

    def queued_by(self, ti_id: str) -> dict[str, Any]:
        """The scheduler job that queued a task instance's try (``id``, ``hostname``), from the database:
        the REST API does not tell it."""
        import psycopg2

        query = "SELECT j.id, j.hostname FROM task_instance ti JOIN job j ON j.id = ti.queued_by_job_id WHERE ti.id = %s"
        database = psycopg2.connect(self.postgres.url.replace("+psycopg2", ""))
        with contextlib.closing(database), database.cursor() as cursor:
            cursor.execute(query, (ti_id,))
            job_id, hostname = cursor.fetchone()
        return {"id": job_id, "hostname": hostname}

    # --- REST API ---

    def jobs(self, job_type: str) -> list[dict[str, Any]]:
        """The jobs of one type (``SchedulerJob``, ``TriggererJob``), newest first."""
        answer = self.get("/jobs", job_type=job_type, order_by="-id", limit=100)
        return list(answer["jobs"])

    def alive_job(self, job_type: str, hostname: str, threshold: float) -> dict[str, Any] | None:
        """The running job of that component whose heartbeat is younger than ``threshold`` seconds."""
        for job in self.jobs(job_type):
            if job["hostname"] == hostname and job["state"] == "running" and job["latest_heartbeat"]:
                age = time.time() - datetime.fromisoformat(job["latest_heartbeat"]).timestamp()
                if age < threshold:
                    return job
        return None

    def task_instances(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[dict[str, Any]]:
        """Every task instance of the run (mapped ones included), or of one task."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100, offset=len(found))
            found += page["task_instances"]
            if len(found) >= page["total_entries"] or not page["task_instances"]:
                break
        return [ti for ti in found if task_id is None or ti["task_id"] == task_id]

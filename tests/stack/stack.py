"""Airflow as users run it on one machine, as separate processes, plus the simulator host.

``AirflowStack`` starts what ``airflow standalone`` starts (scheduler, dag-processor, triggerer,
api-server; LocalExecutor; SQLite; SimpleAuthManager) as four separate processes in a temporary
AIRFLOW_HOME, and talks to them only through the REST API. Every process is started in its own
process group and tracked with its descendants (Airflow's task processes make their own groups), so
``stop()`` ends them all, also after a failure; a last sweep ends any process still carrying this
stack's AIRFLOW_HOME. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import requests

T = TypeVar("T")

BIN = Path(sys.executable).parent
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
LOGIN = "dev@example.com"
#: The developer key every simulator of the stack accepts: distinctive, so a leak is easy to find.
DEVELOPER_KEY = "sk-stack-SECRET-7f3a91"
SIMHOST = Path(__file__).with_name("simhost.py")
#: REST requests answered 5xx are tried this many times in all.
REST_TRIES = 6
#: How long a statement waits for SQLite's write lock. With both cores busy and sixteen tasks starting at
#: once, writers have waited more than 30 s (SQLite's busy handler is not first come, first served).
SQLITE_LOCK_WAIT = 60
#: Read timeout of one REST request, and of a task's request to the execution API: longer than the lock
#: wait, so that the api-server always answers first. A task whose start request timed out on its side
#: while the api-server went on to start it was refused on retry, and Airflow left it queued for good.
REST_TIMEOUT = 2 * SQLITE_LOCK_WAIT


def free_ports(count: int) -> list[int]:
    """Loopback ports free right now (held open together so that they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for(what: str, predicate: Callable[[], T | None], timeout: float, interval: float = 0.25) -> T:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = predicate()
        except (requests.RequestException, OSError, KeyError) as exc:
            result, last_error = None, exc
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what} (last error: {last_error})")
        time.sleep(interval)


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback only: never through a proxy from the environment
    return session


class ProcessGroup:
    """One started process, in its own session, and every descendant it was ever seen with."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log: Path, cwd: Path) -> None:
        self.name = name
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.seen: dict[int, psutil.Process] = {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def refresh(self) -> list[psutil.Process]:
        """Remember the current descendants (called often: they come and go)."""
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.pid)
            for proc in [root, *root.children(recursive=True)]:
                self.seen.setdefault(proc.pid, proc)
        return [p for p in self.seen.values() if _running(p)]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the group and to every tracked descendant (task processes have own groups)."""
        self.refresh()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)
        for proc in self.seen.values():
            with contextlib.suppress(psutil.Error):
                if _running(proc):
                    proc.send_signal(sig)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; always reaps the process."""
        if self.alive():
            self.kill(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        self.kill(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._out.close()


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@dataclass
class SimControl:
    """One named simulator inside the simulator host process, driven through its control port."""

    name: str
    port: int
    control_port: int
    session: requests.Session = field(default_factory=_session)

    def _url(self, action: str) -> str:
        return f"http://127.0.0.1:{self.control_port}/{self.name}/{action}"

    def _post(self, action: str, body: Mapping[str, Any] | None = None) -> None:
        answer = self.session.post(self._url(action), json=dict(body or {}), timeout=10)
        assert answer.status_code == 200, f"simhost {action}: {answer.text}"

    def inject(self, endpoint: str, kind: str, **options: Any) -> None:
        self._post("faults", {"endpoint": endpoint, "kind": kind, **options})

    def clear_faults(self) -> None:
        self._post("clear_faults")

    def script(self, number: str, outcome: str) -> None:
        self._post("script", {"number": number, "outcome": outcome})

    def script_many(self, numbers: Iterable[str], outcome: str) -> None:
        self._post("script", {"numbers": list(numbers), "outcome": outcome})

    def hold(self) -> None:
        """Stop the simulator's clock: every call stays as it is until :meth:`release`."""
        self._post("hold")

    def release(self) -> None:
        self._post("release")

    def stop(self) -> None:
        self._post("stop")

    def start(self) -> None:
        self._post("start")

    def outage(self, seconds: float) -> None:
        self._post("outage", {"seconds": seconds})

    def ledger(self, endpoint: str | None = None, since: float | None = None) -> list[dict[str, Any]]:
        """The ledger; only ``endpoint``'s entries, and only those answered at or after ``since``."""
        params = {k: v for k, v in (("endpoint", endpoint), ("since", since)) if v is not None}
        answer = self.session.get(self._url("ledger"), params=params, timeout=60)
        answer.raise_for_status()
        return list(answer.json())

    def calls(self) -> dict[str, tuple[str, int]]:
        """Every call queued, and its (status, attempts) now: what the simulator knows happened to it."""
        answer = self.session.get(self._url("calls"), timeout=60)
        answer.raise_for_status()
        return {call_id: (state[0], state[1]) for call_id, state in answer.json().items()}

    def now(self) -> float:
        """The simulator's simulated Unix time."""
        answer = self.session.get(self._url("now"), timeout=10)
        answer.raise_for_status()
        return float(answer.json()["now"])

    def connection(self, **extra: Any) -> str:
        """The Airflow connection (JSON form) pointing at this simulator, with ``extra`` options."""
        return json.dumps(
            {
                "conn_type": "fuse",
                "host": f"http://127.0.0.1:{self.port}/api",
                "login": LOGIN,
                "password": DEVELOPER_KEY,
                "extra": extra,
            }
        )


class SimHostProcess:
    """The simulator host (``simhost.py``) in its own process, serving one simulator per name."""

    def __init__(self, names: Iterable[str], home: Path, speed: float) -> None:
        names = list(names)
        *sim_ports, self.control_port = free_ports(len(names) + 1)
        self.ports = dict(zip(names, sim_ports, strict=True))
        argv = [sys.executable, str(SIMHOST), "--control-port", str(self.control_port), "--speed", str(speed)]
        argv += ["--password", DEVELOPER_KEY]
        for name, port in self.ports.items():
            argv += ["--sim", f"{name}={port}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
        self.group = ProcessGroup("simhost", argv, env, home / "simhost.log", home)
        session = _session()
        wait_for(
            "the simulator host",
            lambda: session.get(f"http://127.0.0.1:{self.control_port}/health", timeout=2).ok,
            timeout=30,
        )

    def sim(self, name: str) -> SimControl:
        return SimControl(name, self.ports[name], self.control_port)

    def stop(self) -> None:
        self.group.stop(grace=5)


class CliSimulator:
    """The package's own CLI (``python -m airflow_provider_fuse.testing.cli``) in its own process.

    It is how users run the simulator next to a local Airflow: it prints the connection to export,
    then logs each queued call (masked). It has no control port, so its log is its only ledger.
    """

    def __init__(self, home: Path, conn_id: str, speed: float) -> None:
        (self.port,) = free_ports(1)
        argv = [sys.executable, "-m", "airflow_provider_fuse.testing.cli", "--port", str(self.port)]
        argv += ["--speed", str(speed), "--password", DEVELOPER_KEY, "--login", LOGIN, "--conn-id", conn_id]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        self.group = ProcessGroup("fuse-simulator-cli", argv, env, home / "fuse-simulator-cli.log", home)
        self.env_name, self.uri = wait_for(
            "the simulator CLI's connection line", self._export_line, timeout=30
        )

    def _export_line(self) -> tuple[str, str] | None:
        match = re.search(r"^export (AIRFLOW_CONN_\w+)='([^']+)'$", self.output(), re.MULTILINE)
        return (match[1], match[2]) if match else None

    def output(self) -> str:
        return self.group.log.read_text(errors="replace")

    def queued(self) -> list[str]:
        """The CLI's log lines of queued calls (it logs one per call queued)."""
        return [line for line in self.output().splitlines() if " queued call " in line]

    def stop(self) -> None:
        self.group.stop(grace=5)


class AirflowStack:
    """Scheduler, dag-processor, triggerer and api-server as separate processes; REST API access.

    Subclasses change the topology and the database through :attr:`components`, :meth:`component_argv`,
    :meth:`component_env`, :meth:`topology_env` and :meth:`prepare_database` (tests/cluster).
    """

    #: The processes started, by name; each is ``airflow <name>`` unless :meth:`component_argv` says otherwise.
    components: tuple[str, ...] = COMPONENTS

    def __init__(self, home: Path, dag_sources: Iterable[Path], env: Mapping[str, str]) -> None:
        self.home = home
        self.dags = home / "dags"
        self.dags.mkdir(parents=True, exist_ok=True)
        for source in dag_sources:
            for path in sorted(source.glob("*.py")) if source.is_dir() else [source]:
                shutil.copy(path, self.dags / path.name)
        (self.port,) = free_ports(1)
        self.url = f"http://127.0.0.1:{self.port}"
        (home / "config").mkdir(exist_ok=True)  # Airflow puts AIRFLOW_HOME/config on sys.path
        self.env = self._environment(env)
        self.groups: dict[str, ProcessGroup] = {}
        self.retired: list[ProcessGroup] = []
        self.api = _session()

    def topology_env(self) -> dict[str, str]:
        """Executor and database (over the timings of :meth:`_environment`): SQLite with four writers,
        no connection pool, and a long wait for a lock (SQLITE_LOCK_WAIT)."""
        # Python's default wait, 5 s, gives "database is locked" on a loaded 2-core machine.
        (self.home / "config" / "airflow_local_settings.py").write_text(
            f'connect_args = {{"timeout": {SQLITE_LOCK_WAIT}}}\n'
            f'connect_args_async = {{"timeout": {SQLITE_LOCK_WAIT}}}\n'
        )
        return {
            # What `airflow standalone` configures: LocalExecutor and SQLite (Airflow's default URL).
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # No connection pool: with its default 5 + 10 connections, sixteen task starts arriving at
            # the api-server at once held every connection while waiting for one more, for the pool's
            # 30 s, and Airflow then left those tasks waiting for their start for good. SQLite
            # connections cost nothing to open.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_ENABLED": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "airflow_local_settings.connect_args",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": "airflow_local_settings.connect_args_async",
        }

    def _environment(self, extra: Mapping[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
        env.update(
            {
                "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",  # Airflow spawns `airflow` by name
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                # SimpleAuthManager with every user admin, as `airflow standalone` configures it.
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": "fuse-system-tests-jwt-secret-0123456789abcdef",
                "AIRFLOW__CORE__FERNET_KEY": "",
                # Longer than any database lock wait: see REST_TIMEOUT.
                "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": str(REST_TIMEOUT),
                # Fast enough for tests on a 2-core machine, still Airflow's own code paths.
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "6",
                "AIRFLOW__CORE__PARALLELISM": "16",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "16",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
                **self.topology_env(),
            }
        )
        env.update(extra)
        return env

    # --- lifecycle ---

    def start(self, timeout: float = 150) -> None:
        started = time.monotonic()
        migrate = subprocess.run(
            [str(BIN / "airflow"), "db", "migrate"],
            env=self.env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if migrate.returncode:
            raise RuntimeError(
                f"airflow db migrate failed:\n{migrate.stdout[-2000:]}{migrate.stderr[-3000:]}"
            )
        self.prepare_database()
        for name in self.components:
            self.start_component(name)
        remaining = timeout - (time.monotonic() - started)
        wait_for(
            "the api-server", lambda: self.api.get(f"{self.url}/api/v2/version", timeout=3).ok, remaining
        )
        wait_for("scheduler, dag-processor and triggerer to be healthy", self.healthy, timeout)

    def prepare_database(self) -> None:
        """After the migration: SQLite's WAL journal, so that readers never block the writer.

        Sixteen task starts at once (and the lock waits they would queue behind readers) no longer
        stall every component on a loaded 2-core machine.
        """
        with contextlib.closing(sqlite3.connect(self.home / "airflow.db")) as db:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise RuntimeError(f"SQLite refused the WAL journal mode ({mode})")

    def component_argv(self, name: str) -> list[str]:
        return [str(BIN / "airflow"), name]

    def component_env(self, name: str) -> dict[str, str]:
        """What one component's environment adds to :attr:`env`."""
        return {}

    def start_component(self, name: str) -> ProcessGroup:
        env = {**self.env, **self.component_env(name)}
        group = ProcessGroup(name, self.component_argv(name), env, self.home / f"{name}.log", self.home)
        self.groups[name] = group
        return group

    def kill_component(self, name: str) -> list[int]:
        """SIGKILL a component and its whole process tree, as a crashed machine would; returns the pids."""
        group = self.groups.pop(name)
        pids = [p.pid for p in group.refresh()]
        group.kill(signal.SIGKILL)
        group.stop(grace=0)
        self.retired.append(group)
        return pids

    def stop(self) -> None:
        groups = [*self.groups.values(), *self.retired]
        for group in groups:  # all asked at once, so that they shut down side by side
            if group.alive():
                group.kill(signal.SIGTERM)
        for group in groups:
            group.stop()
        self.sweep()

    def sweep(self) -> list[int]:
        """Kill any process that still carries this stack's AIRFLOW_HOME (only this stack's processes)."""
        home = str(self.home)
        killed = []
        for proc in psutil.process_iter(["pid"]):
            with contextlib.suppress(psutil.Error):
                if proc.pid != os.getpid() and proc.environ().get("AIRFLOW_HOME") == home and _running(proc):
                    proc.kill()
                    killed.append(proc.pid)
        return killed

    def processes(self) -> list[psutil.Process]:
        """Every live process of the stack (components and their descendants)."""
        found: list[psutil.Process] = []
        for group in self.groups.values():
            found.extend(group.refresh())
        return found

    # --- REST API ---

    def call(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs: Any) -> requests.Response:
        """One REST request, tried again (bounded) on a 5xx: SQLite sometimes answers "database is locked"."""
        for attempt in range(1, REST_TRIES + 1):
            answer = self.api.request(method, f"{self.url}/api/v2{path}", timeout=REST_TIMEOUT, **kwargs)
            if answer.status_code < 500 or attempt == REST_TRIES:
                break
            time.sleep(0.5 * attempt)
        assert answer.status_code in ok, f"{method} {path}: HTTP {answer.status_code} {answer.text[:500]}"
        return answer

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params).json()

    def healthy(self) -> bool:
        health = self.get("/monitor/health")
        return all(
            health.get(part, {}).get("status") == "healthy"
            for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
        )

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = 90) -> None:
        for dag_id in dag_ids:
            wait_for(f"DAG {dag_id} to be parsed", lambda d=dag_id: self._dag_exists(d), timeout)

    def _dag_exists(self, dag_id: str) -> bool:
        return self.call("GET", f"/dags/{dag_id}", ok=(200, 404)).status_code == 200

    def unpause(self, dag_id: str) -> None:
        answer = self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        assert answer.json()["is_paused"] is False

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Start a DAG run; its id is chosen here, so that a retried request cannot start a second run."""
        run_id = f"fuse_system__{uuid.uuid4().hex[:12]}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": dict(conf or {})}
        self.call("POST", f"/dags/{dag_id}/dagRuns", ok=(200, 409), json=body)  # 409: the first try made it
        assert self.run_state(dag_id, run_id) in ("queued", "running", "success", "failed")
        return run_id

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def wait_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        return wait_for(
            f"run {run_id} of {dag_id} to finish",
            lambda: (s := self.run_state(dag_id, run_id)) in ("success", "failed") and s,
            timeout,
            interval=0.5,
        )

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return dict(self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"))

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every try of the task instance, oldest first (the current try included)."""
        answer = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")
        return sorted(answer["task_instances"], key=lambda t: t["try_number"])

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.get(path, deserialize=True, map_index=map_index)["value"]

    def state_store(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """The task state store entries of a task instance (Airflow 3.3+)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/state-store"
        return {e["key"]: e["value"] for e in self.get(path)["task_state_store"]}

    def log_events(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> list[dict[str, Any]]:
        """The task log of one try (the trigger's lines included), one dict per line."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        content = self.get(path, full_content=True).get("content")
        lines = content if isinstance(content, list) else str(content).splitlines()
        return [line if isinstance(line, dict) else {"event": str(line)} for line in lines]

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """The task log of one try, as text (one JSON object per line)."""
        events = self.log_events(dag_id, run_id, task_id, try_number)
        return "\n".join(json.dumps(line, default=str) for line in events)

    def task_process(self, ti_id: str) -> psutil.Process | None:
        """The process running a task try: Airflow titles it ``airflow worker -- <task instance id>``."""
        title = f"airflow worker -- {ti_id}"
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                if " ".join(proc.cmdline()).strip() == title:
                    return proc
        return None

    def supervisor_of(self, task: psutil.Process) -> psutil.Process | None:
        """The LocalExecutor worker (supervisor) that forked the task process."""
        with contextlib.suppress(psutil.Error):
            return task.parent()
        return None

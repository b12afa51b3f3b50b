"""Run DAGs with the real ``airflow dags test`` in a throwaway AIRFLOW_HOME, e.g. against FuseSimulator.

Used by ``make demo`` and the end-to-end tests, and handy for testing your own DAGs::

    with FuseSimulator(speed=600) as sim:
        sandbox = AirflowSandbox([Path("dags")])
        result = sandbox.dags_test("my_dag", env=sim.connection_env())
        assert result.ok, result.output
        print(sandbox.xcom("my_dag", "call"))
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DagTestResult:
    """What one ``airflow dags test`` run left behind."""

    dag_id: str
    returncode: int
    output: str
    task_states: Mapping[str, str]

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and all(s in ("success", "skipped") for s in self.task_states.values())


class AirflowSandbox:
    """A private AIRFLOW_HOME (SQLite) whose dags folder holds copies of the given DAG files."""

    def __init__(self, dag_sources: Iterable[Path], home: Path | None = None):
        self.home = home or Path(tempfile.mkdtemp(prefix="fuse-airflow-"))
        self.dags_folder = self.home / "dags"
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        for source in dag_sources:
            for path in sorted(source.glob("*")) if source.is_dir() else [source]:
                if path.is_file() and path.suffix in (".py", ".csv"):
                    shutil.copy(path, self.dags_folder / path.name)
        self._migrated = False

    @property
    def airflow(self) -> str:
        return str(Path(sys.executable).parent / "airflow")

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags_folder),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__UNIT_TEST_MODE="False",
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        )
        env.update(extra or {})
        return env

    def migrate(self) -> None:
        if not self._migrated:
            self._run(["db", "migrate"], self.env(), timeout=300, check=True)
            self._migrated = True

    def dags_test(
        self,
        dag_id: str,
        *,
        conf: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 300,
    ) -> DagTestResult:
        self.migrate()
        args = ["dags", "test", dag_id]
        if conf:
            args += ["-c", json.dumps(conf)]
        completed = self._run(args, self.env(env), timeout=timeout)
        return DagTestResult(dag_id, completed.returncode, completed.stdout, self.task_states(dag_id))

    @contextlib.contextmanager
    def api_server(self, env: Mapping[str, str] | None = None, timeout: float = 180) -> Iterator[str]:
        """``airflow api-server`` on a free loopback port, up (its version answers) for the block; yields
        its URL. Its output goes to ``api-server.log`` in the home. ``timeout`` only stops a stuck start
        (about 15 s on a quiet machine)."""
        import urllib.request

        self.migrate()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        url = f"http://127.0.0.1:{port}"
        argv = [self.airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        with (self.home / "api-server.log").open("wb") as log:
            server = subprocess.Popen(
                argv,
                env=self.env({"AIRFLOW__API__BASE_URL": url, **(env or {})}),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + timeout
            while True:
                with (
                    contextlib.suppress(OSError),
                    urllib.request.urlopen(f"{url}/api/v2/version", timeout=5) as up,
                ):
                    if up.status == 200:
                        break
                if server.poll() is not None or time.monotonic() > deadline:
                    output = (self.home / "api-server.log").read_text(errors="replace")
                    raise RuntimeError(f"airflow api-server did not start:\n{output[-3000:]}")
                time.sleep(0.5)
            yield url
        finally:
            stop_process_group(server)

    def task_states(self, dag_id: str) -> dict[str, str]:
        """Final state of each task instance in the DAG's latest run (``task_id`` or ``task_id[map_index]``)."""
        rows = self._query(
            "SELECT task_id, map_index, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
            dag_id,
        )
        return {task if index < 0 else f"{task}[{index}]": state for task, index, state in rows}

    def xcom(self, dag_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """An XCom value of the DAG's latest run, decoded from JSON; None when absent."""
        rows = self._query(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = ? AND map_index = ?",
            dag_id,
            task_id,
            key,
            map_index,
        )
        if not rows:
            return None
        value = rows[0][0]
        return json.loads(value) if isinstance(value, (str, bytes)) else value

    def cleanup(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)

    def _query(self, sql: str, dag_id: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            latest = db.execute(
                "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
            ).fetchone()
            if latest is None:
                return []
            return db.execute(sql, (dag_id, latest[0], *params)).fetchall()

    def _run(
        self, args: list[str], env: Mapping[str, str], *, timeout: float, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            [self.airflow, *args],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        if check and completed.returncode:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{completed.stdout[-3000:]}")
        return completed


def stop_process_group(server: subprocess.Popen[bytes]) -> None:
    """Its whole process group: SIGTERM, then SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(server.pid, sig)
            server.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue

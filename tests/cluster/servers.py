"""Throwaway PostgreSQL and Redis for the cluster suite, from Debian's packages, on free loopback ports.

Each server runs in the foreground as a :class:`~tests.stack.stack.ProcessGroup` (the process started
*is* the server: no daemon, nothing left to a pid file), in its own temporary directory, which
``remove()`` deletes. PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` user
(``setpriv``), in a directory of its own under /tmp (pytest's are private to root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.stack.stack import ProcessGroup, free_ports, wait_for

#: Up, and back after a restart, within this many seconds (about 0.2 s on a quiet machine).
READY = 60


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with contextlib.closing(socket.socket()) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def postgres_bindir() -> Path:
    """The newest installed PostgreSQL's binaries (Debian keeps them off PATH)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: `make test-cluster` installs Debian's postgresql")
    return found[-1].parent


def redis_binary(directory: Path) -> Path:
    """A ``redis-server``: on PATH, else a link named so to redis-tools' multi-call binary."""
    installed = shutil.which("redis-server")
    if installed:
        return Path(installed)
    multi = shutil.which("redis-check-rdb")
    if not multi:
        raise RuntimeError("Redis is not installed: `make test-cluster` installs Debian's redis-tools")
    link = directory / "redis-server"  # Redis picks its role from argv[0]
    link.symlink_to(multi)
    return link


class Server:
    """One server process in a temporary directory; ``start`` and ``stop`` may be called again."""

    name = "server"
    #: The signal that stops the server cleanly (its data kept).
    stop_signal = signal.SIGTERM

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"fuse-cluster-{self.name}-"))
        (self.port,) = free_ports(1)
        self.group: ProcessGroup | None = None
        self.restarts = 0

    def argv(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        self.group = ProcessGroup(
            self.name, self.argv(), dict(os.environ), self.root / f"{self.name}.log", self.root
        )
        wait_for(f"{self.name} on port {self.port}", self.ready, READY)

    def stop(self) -> None:
        """The clean stop, then whatever is left SIGKILLed; always reaps the process."""
        if self.group is None:
            return
        group, self.group = self.group, None
        if group.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(group.pid, self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                group.proc.wait(timeout=READY)
        group.stop(grace=5)

    def restart(self) -> None:
        """Stopped cleanly and started again on the same port and data, as an upgrade or a failover does."""
        self.stop()
        self.start()
        self.restarts += 1

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


class Postgres(Server):
    """PostgreSQL (``initdb`` once, then ``postgres`` in the foreground): Airflow's metadata database."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: clients disconnected, data kept (SIGTERM waits for them)
    user = "airflow"

    def __init__(self) -> None:
        super().__init__()
        self.bindir = postgres_bindir()
        self.as_user: list[str] = []
        if os.getuid() == 0:  # initdb: "cannot be run as root"
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self.as_user = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
        self.data = self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/airflow"

    def start(self) -> None:
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8")
        super().start()
        if not (self.root / "created").exists():
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "airflow")
            (self.root / "created").touch()

    def argv(self) -> list[str]:
        # Durability off (a throwaway database); room for ten Airflow processes' connection pools.
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
        }
        options = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        return [
            *self.as_user,
            str(self.bindir / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            *options,
        ]

    def ready(self) -> bool:
        check = [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(check, stdin=subprocess.DEVNULL, capture_output=True).returncode == 0

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self.as_user, str(self.bindir / tool), *args],
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=READY,
        )
        if done.returncode:
            raise RuntimeError(
                f"{tool} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )


class Redis(Server):
    """Redis, the Celery broker; its append-only file keeps the queues across a restart."""

    name = "redis"

    def __init__(self) -> None:
        super().__init__()
        self.binary = redis_binary(self.root)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        # appendonly: messages queued for the workers, and those a worker took but has not acknowledged,
        # survive a restart (SIGTERM writes the file out), as a production broker's would.
        return [
            str(self.binary),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.root),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ]

    def ready(self) -> bool:
        with contextlib.closing(socket.create_connection(("127.0.0.1", self.port), timeout=2)) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

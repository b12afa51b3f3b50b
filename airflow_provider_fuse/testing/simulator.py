"""FuseSimulator: a local, stateful Fuse API server for demos and tests (what moto is to AWS).

with FuseSimulator(speed=600) as sim:
    sim.script("+16175551234", "busy:2")
    os.environ.update(sim.connection_env())  # Airflow's fuse_default now points at it
    ...
    assert len(sim.requests("queue")) == 1
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode

from airflow_provider_fuse import DEFAULT_CONN_ID, protocol
from airflow_provider_fuse.testing.app import BULK_ANSWERS, Answers, FuseApp
from airflow_provider_fuse.testing.callbacks import CallbackScheduler, post_result
from airflow_provider_fuse.testing.calls import Call, Outcome
from airflow_provider_fuse.testing.clock import SimClock
from airflow_provider_fuse.testing.faults import Faults
from airflow_provider_fuse.testing.ledger import Ledger, LedgerEntry
from airflow_provider_fuse.testing.server import SimulatorServer
from airflow_provider_fuse.testing.store import CallStore

DEFAULT_LOGIN = "dev@example.com"
DEFAULT_PASSWORD = "dev-key"
HOST = "127.0.0.1"
BASE_PATH = "/api"
# How often the server loop checks for stop(): bounds how long stop() takes (tests start many).
POLL_INTERVAL = 0.02


class FuseSimulator:
    """The Fuse API on loopback, with a simulated clock, scripted outcomes, faults and a ledger.

    ``speed`` is simulated seconds per real second, counted for each call from the moment it is queued
    (the calendar stays on real time, see :mod:`~airflow_provider_fuse.testing.clock`); ``clock`` (real
    epoch seconds, zero-arg) can be frozen so that only :meth:`advance` moves time. ``started_ago``
    (real seconds) behaves as a simulator started that long before. ``deployments`` = None accepts any
    numeric application/deployment ids, else only the given ``(application_id, deployment_id)`` pairs.
    ``variables_format`` is how it reads a queue request's variables (the connection extra of that
    name, see :func:`~airflow_provider_fuse.protocol.variables_form`); :meth:`variables` tells what it
    read. ``bulk_answer`` is how it answers a bulk upload: ``"ids"`` (``{"call_ids": [...]}``, the
    provider's assumption), ``"success_only"`` (``{"success": true}``) or ``"empty"`` (202, no body).
    """

    def __init__(
        self,
        *,
        login: str = DEFAULT_LOGIN,
        password: str = DEFAULT_PASSWORD,
        speed: float = 600.0,
        port: int = 0,
        default_outcome: str | Outcome = "answer",
        deployments: Iterable[tuple[int | str, int | str]] | None = None,
        clock: Callable[[], float] | None = None,
        started_ago: float = 0.0,
        seed: int | None = 0,
        variables_field: str = protocol.DEFAULT_VARIABLES_FIELD,
        variables_format: str = protocol.DEFAULT_VARIABLES_FORMAT,
        bulk_answer: str = BULK_ANSWERS[0],
    ) -> None:
        if variables_format not in protocol.VARIABLES_FORMATS:
            raise ValueError(f"variables_format must be one of {protocol.VARIABLES_FORMATS}")
        if bulk_answer not in BULK_ANSWERS:
            raise ValueError(f"bulk_answer must be one of {BULK_ANSWERS}")
        self.login = login
        self.password = password
        self._requested_port = port
        self._answers = Answers(variables_field, variables_format, bulk_answer)
        self._clock = SimClock(speed, clock, started_ago)
        self._store = CallStore(self._clock, Outcome.parse(default_outcome), deployments)
        self._ledger = Ledger()
        self.faults = Faults(seed)
        self._callbacks = CallbackScheduler(
            self._clock, self._store.claim_callback, lambda call: post_result(call, self._clock, self._ledger)
        )
        self._server: SimulatorServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> FuseSimulator:
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        self._server = server = SimulatorServer(HOST, self._requested_port)
        self._requested_port = server.port  # a restart comes back where the connection points
        server.app = FuseApp(
            base_url=self.url,
            login=self.login,
            password=self.password,
            store=self._store,
            clock=self._clock,
            faults=self.faults,
            ledger=self._ledger,
            answers=self._answers,
            schedule_callbacks=self._callbacks.schedule,
        )
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name="fuse-simulator",
            daemon=True,
        )
        self._thread.start()
        self._callbacks.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stop()
        self._callbacks.stop()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FuseSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- where it is -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not running: call start() or use it as a context manager")
        return self._server.port

    @property
    def url(self) -> str:
        """The base URL, like Fuse's ``https://fuse.plumvoice.com/api``."""
        return f"http://{HOST}:{self.port}{BASE_PATH}"

    @property
    def connection_uri(self) -> str:
        """An Airflow connection URI: host ``http://127.0.0.1``, the port, schema ``api``, and as extras
        the simulator's variables field and format where they are not the defaults."""
        auth = f"{quote(self.login, safe='')}:{quote(self.password, safe='')}"
        extras = {
            name: value
            for name, value, default in (
                ("variables_field", self._answers.variables_field, protocol.DEFAULT_VARIABLES_FIELD),
                ("variables_format", self._answers.variables_format, protocol.DEFAULT_VARIABLES_FORMAT),
            )
            if value != default
        }
        query = f"?{urlencode(extras)}" if extras else ""
        return f"fuse://http://{auth}@{HOST}:{self.port}{BASE_PATH}{query}"

    def connection_env(self, conn_id: str = DEFAULT_CONN_ID) -> dict[str, str]:
        """The environment variable that defines the Airflow connection ``conn_id``."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.connection_uri}

    # -- scripting and time ------------------------------------------------------------------------

    def script(self, destination: str, outcome: str | Outcome) -> None:
        """What happens to calls queued from now on to ``destination`` (any spelling of the number)."""
        self._store.script(destination, outcome)

    def set_default_outcome(self, outcome: str | Outcome) -> None:
        self._store.set_default_outcome(outcome)

    def delete_deployment(self, application_id: int | str, deployment_id: int | str) -> None:
        """Later requests to the deployment are answered 409, as Fuse does for deleted ones."""
        self._store.delete_deployment(application_id, deployment_id)

    def now(self, call_id: str | int | None = None) -> float:
        """The calendar (real Unix time plus :meth:`advance`), or with ``call_id`` that call's own time.

        A call's time runs ``speed`` times faster from its queueing: ahead of the calendar while the
        call is in progress (with a frozen clock the two are equal).
        """
        if call_id is None:
            return self._clock.now()
        return self._clock.time_of(self.call(call_id).anchor)

    def advance(self, seconds: float) -> float:
        """Move the calendar and every call's time forward; returns the new calendar."""
        now = self._clock.advance(seconds)
        self._callbacks.wake()
        return now

    # -- what happened -----------------------------------------------------------------------------

    def call(self, call_id: str | int) -> Call:
        """The stored state of one call (KeyError when unknown); ``.status_at(sim.now(call_id))`` etc."""
        call = self._store.get(str(call_id))
        if call is None:
            raise KeyError(f"no call {call_id!r}")
        return call

    def variables(self, call_id: str | int) -> dict[str, Any]:
        """The variables the call was queued with, as read in the simulator's ``variables_format``
        (bulk calls: their CSV columns). A format the sender did not use reads as no variables."""
        return dict(self.call(call_id).spec.variables)

    def status(self, call_id: str | int) -> str:
        """The call's status now, as the status endpoint would report it."""
        return self.call(call_id).status_at(self.now(call_id))

    @property
    def ledger(self) -> list[LedgerEntry]:
        """Every request received (and result_url POST made), in arrival order."""
        return self._ledger.entries()

    def requests(self, endpoint: str) -> list[LedgerEntry]:
        """The ledger entries of one endpoint: queue, bulk_queue, status, cancel, callback or other."""
        return self._ledger.entries(endpoint)

    @property
    def callbacks(self) -> list[LedgerEntry]:
        """The result_url deliveries attempted: ``path`` is the URL, ``status`` or ``error`` the outcome."""
        return self._ledger.entries("callback")

"""The simulator's state: calls, outcome scripts and deployments, behind one lock."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable

from airflow_provider_fuse import protocol
from airflow_provider_fuse.testing.calls import Call, CallSpec, Outcome, build_timeline
from airflow_provider_fuse.testing.clock import SimClock
from airflow_provider_fuse.testing.rules import ApiError

DeploymentKey = tuple[int, int]


def destination_digits(destination: str) -> str:
    """The digits of a number in any spelling: ``tel:+1 (617) 555-1234;ani=1`` -> ``16175551234``."""
    number = destination.strip()
    if number[:4].lower() == "tel:":
        number = number[4:]
    digits = "".join(ch for ch in number.split(";", 1)[0] if ch.isdigit())
    if not digits:
        raise ValueError(f"no digits in destination {destination!r}")
    return digits


def deployment_key(application_id: int | str, deployment_id: int | str) -> DeploymentKey:
    """Numeric ids as a key; anything else is a deployment Fuse cannot have (404)."""
    app, dep = str(application_id), str(deployment_id)
    if not (app.isdigit() and dep.isdigit()):
        raise ApiError(404, "deployment not found")
    return int(app), int(dep)


class CallStore:
    """Every simulated call, by id and by deployment; ids are increasing numeric strings from 1."""

    def __init__(
        self,
        clock: SimClock,
        default_outcome: Outcome,
        deployments: Iterable[tuple[int | str, int | str]] | None = None,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._calls: dict[str, Call] = {}
        self._by_deployment: dict[DeploymentKey, list[str]] = defaultdict(list)
        self._next_id = 1
        self._default_outcome = default_outcome
        # A script matches the full digits first, then the last ten (national vs international form).
        self._scripts: dict[str, Outcome] = {}
        self._scripts_by_last10: dict[str, Outcome] = {}
        self._deployments = None if deployments is None else {deployment_key(*d) for d in deployments}
        self._deleted: set[DeploymentKey] = set()
        self._callbacks_claimed: set[str] = set()

    def script(self, destination: str, outcome: Outcome | str) -> None:
        digits, parsed = destination_digits(destination), Outcome.parse(outcome)
        with self._lock:
            self._scripts[digits] = parsed
            self._scripts_by_last10[digits[-10:]] = parsed

    def set_default_outcome(self, outcome: Outcome | str) -> None:
        parsed = Outcome.parse(outcome)
        with self._lock:
            self._default_outcome = parsed

    def _outcome_for(self, digits: str) -> Outcome:
        found = self._scripts.get(digits) or self._scripts_by_last10.get(digits[-10:])
        return found or self._default_outcome

    def check_deployment(self, application_id: str, deployment_id: str) -> DeploymentKey:
        """The deployment's key, or 404 (unknown) / 409 (deleted) as Fuse answers."""
        key = deployment_key(application_id, deployment_id)
        with self._lock:
            if self._deployments is not None and key not in self._deployments:
                raise ApiError(404, "deployment not found")
            if key in self._deleted:
                raise ApiError(409, "deployment has been deleted")
        return key

    def delete_deployment(self, application_id: int | str, deployment_id: int | str) -> None:
        with self._lock:
            self._deleted.add(deployment_key(application_id, deployment_id))

    def queue(self, key: DeploymentKey, specs: list[CallSpec]) -> list[Call]:
        """Queue every spec now, atomically and in order; their time lines start together."""
        anchor = self._clock.anchor()
        queued_at = int(anchor.calendar)
        with self._lock:
            calls = []
            for spec in specs:
                call_id = str(self._next_id)
                self._next_id += 1
                outcome = self._outcome_for(spec.digits)
                timeline = build_timeline(call_id, queued_at, spec.options, outcome)
                call = Call(call_id, str(key[0]), str(key[1]), spec, outcome, timeline, anchor)
                self._calls[call_id] = call
                self._by_deployment[key].append(call_id)
                calls.append(call)
        return calls

    def get(self, call_id: str) -> Call | None:
        with self._lock:
            return self._calls.get(call_id)

    def cancel(self, key: DeploymentKey) -> list[Call]:
        """End every pending call of the deployment as ``canceled`` now (each at its own time).

        Pending means not yet connected: a conversation in progress is not cut off. Returns those calls.
        """
        with self._lock:
            canceled = []
            for call_id in self._by_deployment[key]:
                call = self._calls[call_id]
                now = int(self._clock.time_of(call.anchor))
                if call.terminal_at > now and call.status_at(now) != protocol.CONNECTED:
                    self._calls[call_id] = call = call.canceled_at(now)
                    canceled.append(call)
        return canceled

    def claim_callback(self, call_id: str) -> Call | None:
        """The call, once, when it has ended and has a result_url; None otherwise or if already claimed."""
        with self._lock:
            call = self._calls.get(call_id)
            if call is None or call_id in self._callbacks_claimed or not call.spec.options.result_url:
                return None
            if not self._clock.has_reached(call.anchor, call.terminal_at):
                return None
            self._callbacks_claimed.add(call_id)
            return call

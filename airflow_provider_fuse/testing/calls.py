"""Scripted outcomes and the precomputed timeline of each simulated call.

A call's whole future is computed once, when it is queued, from its start/end timestamps, its
max_attempts and reattempt_wait and the outcome scripted for its destination. Its state at any time
``t`` of its own time line (see :mod:`~airflow_provider_fuse.testing.clock`) is then the last event at
or before ``t``: nothing ticks, so 10,000 calls cost nothing while nobody looks at them.

Simulated durations (seconds), drawn per call id and attempt so reruns give the same timeline:

- dialing starts 1 s after queueing (as in Fuse's documented sample), or at ``start_timestamp``;
- answered: rings 5-25 s, then talks 30-90 s (``duration``), ends ``completed``;
- busy: the ``busy`` event 2-5 s after dialing; no answer: the ``no_answer`` event after 30-45 s;
- rejected: the ``rejected`` event 1-3 s after dialing, status ``rejected``, no further attempt;
- after a failed attempt the call is ``queued`` again until ``reattempt_wait`` has passed; after the
  last attempt it is ``failed``;
- an attempt never starts at or after ``end_timestamp``: the call then fails with an ``expired`` event
  at ``end_timestamp`` (an attempt already under way finishes);
- a cancel ends a pending call with a ``canceled`` event at the moment of the cancel.

Fuse documents the events queued, dialing, connected and disconnected; the names of the other events
are the simulator's own (the hook does not interpret event names).
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field, replace
from typing import Any

from airflow_provider_fuse import protocol
from airflow_provider_fuse.testing.clock import Anchor

DIAL_DELAY = 1
RING_SECONDS = (5, 25)
TALK_SECONDS = (30, 90)
BUSY_SECONDS = (2, 5)
NO_ANSWER_SECONDS = (30, 45)
REJECT_SECONDS = (1, 3)
# Fuse's documented sample shows reattempt_wait "300" on a one-attempt call: taken as its default.
DEFAULT_REATTEMPT_WAIT = 300

OUTCOME_KINDS = ("answer", "busy", "no_answer", "never", "reject")


@dataclass(frozen=True)
class Outcome:
    """What happens when a destination is dialled.

    ``answer``; ``busy``/``no_answer`` for the first ``failures`` attempts then answer (every attempt
    when ``failures`` is None); ``never`` (no attempt is answered); ``reject``.
    """

    kind: str = "answer"
    failures: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in OUTCOME_KINDS:
            raise ValueError(f"unknown outcome {self.kind!r}; expected one of {', '.join(OUTCOME_KINDS)}")
        if self.failures is not None and (self.kind not in ("busy", "no_answer") or self.failures < 0):
            raise ValueError("only busy and no_answer take a count of failed attempts (>= 0)")

    @classmethod
    def parse(cls, spec: str | Outcome) -> Outcome:
        """``"answer"``, ``"busy:2"``, ``"no_answer:1"``, ``"busy"`` (always), ``"never"``, ``"reject"``."""
        if isinstance(spec, Outcome):
            return spec
        kind, sep, count = spec.strip().lower().partition(":")
        if sep and not count.isdigit():
            raise ValueError(f"bad outcome {spec!r}: the count after ':' must be a whole number")
        return cls(kind, int(count) if sep else None)

    def attempt_result(self, attempt: int) -> str:
        """``answer``, ``busy``, ``no_answer`` or ``reject`` for the 1-based ``attempt``."""
        if self.kind == "never":
            return "no_answer"
        if self.kind in ("busy", "no_answer") and (self.failures is None or attempt <= self.failures):
            return self.kind
        return self.kind if self.kind == "reject" else "answer"

    def __str__(self) -> str:
        return self.kind if self.failures is None else f"{self.kind}:{self.failures}"


@dataclass(frozen=True)
class Event:
    """One step of a call: the event Fuse reports, and the call's status and attempts from then on."""

    name: str
    timestamp: int
    status: str
    attempts: int


@dataclass(frozen=True)
class CallOptions:
    """The validated optional fields of a queue request (shared by all rows of a bulk request)."""

    start_timestamp: int | None = None
    end_timestamp: int | None = None
    max_attempts: int = 1
    reattempt_wait: int = DEFAULT_REATTEMPT_WAIT
    result_url: str | None = None
    is_pci: bool = False


@dataclass(frozen=True)
class CallSpec:
    """One validated call request: destination, variables and options."""

    phone_number: str
    digits: str
    variables: dict[str, Any] = field(default_factory=dict)
    options: CallOptions = CallOptions()


@dataclass(frozen=True)
class Call:
    """A simulated call: what was asked for and its whole timeline (the last event is terminal).

    Timestamps, and the ``now`` arguments below, are in the call's own time, set by ``anchor``.
    """

    call_id: str
    application_id: str
    deployment_id: str
    spec: CallSpec
    outcome: Outcome
    timeline: tuple[Event, ...]
    anchor: Anchor

    @property
    def terminal_at(self) -> int:
        return self.timeline[-1].timestamp

    @property
    def terminal_elapsed(self) -> float:
        """The clock's sped-up counter reading at which the call ends."""
        return self.anchor.elapsed_at(self.terminal_at)

    def events_at(self, now: float) -> tuple[Event, ...]:
        """The events that have happened by the call's time ``now`` (always at least ``queued``)."""
        stamps = [e.timestamp for e in self.timeline]
        return self.timeline[: max(1, bisect.bisect_right(stamps, now))]

    def status_at(self, now: float) -> str:
        return self.events_at(now)[-1].status

    def details_at(self, now: float) -> dict[str, Any]:
        """The ``call_details`` Fuse would report at the call's time ``now``."""
        events = self.events_at(now)
        when = {e.name: e.timestamp for e in events}
        started, ended = when.get("connected", 0), when.get("disconnected", 0)
        return protocol.call_details(
            status=events[-1].status,
            phone_digits=self.spec.digits,
            events=[(e.name, e.timestamp) for e in events],
            attempts=events[-1].attempts,
            max_attempts=self.spec.options.max_attempts,
            reattempt_wait=self.spec.options.reattempt_wait,
            queued_timestamp=events[0].timestamp,
            start_timestamp=started,
            end_timestamp=ended,
            duration=ended - started if ended else 0,
        )

    def canceled_at(self, now: int) -> Call:
        """This call with its future replaced by a ``canceled`` event at ``now``."""
        past = self.events_at(now)
        cancel = Event("canceled", now, protocol.CANCELED, past[-1].attempts)
        return replace(self, timeline=(*past, cancel))


def build_timeline(call_id: str, queued_at: int, options: CallOptions, outcome: Outcome) -> tuple[Event, ...]:
    """Every event of a call from queueing to its terminal status (see the module docstring)."""
    events = [Event("queued", queued_at, protocol.QUEUED, 0)]
    dial_at = max(options.start_timestamp or 0, queued_at + DIAL_DELAY)
    end = options.end_timestamp
    for attempt in range(1, options.max_attempts + 1):
        if end is not None and dial_at >= end:
            events.append(Event("expired", max(end, events[-1].timestamp), protocol.FAILED, attempt - 1))
            break
        rng = random.Random(f"{call_id}:{attempt}")
        result = outcome.attempt_result(attempt)
        events.append(Event("dialing", dial_at, protocol.DIALING, attempt))
        if result == "answer":
            connected = dial_at + rng.randint(*RING_SECONDS)
            events.append(Event("connected", connected, protocol.CONNECTED, attempt))
            events.append(
                Event("disconnected", connected + rng.randint(*TALK_SECONDS), protocol.COMPLETED, attempt)
            )
            break
        if result == "reject":
            events.append(
                Event("rejected", dial_at + rng.randint(*REJECT_SECONDS), protocol.REJECTED, attempt)
            )
            break
        failed_at = dial_at + rng.randint(*(BUSY_SECONDS if result == "busy" else NO_ANSWER_SECONDS))
        last = attempt == options.max_attempts
        events.append(Event(result, failed_at, protocol.FAILED if last else protocol.QUEUED, attempt))
        dial_at = failed_at + options.reattempt_wait
    return tuple(events)

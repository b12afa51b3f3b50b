"""The simulated clock: the calendar stays on real time, each call's durations run ``speed`` times faster.

Two readings, both moved by :meth:`SimClock.advance` (a test's hand on the clock):

- the calendar, ``now() = real time + advanced``: the time at which new calls are queued, so a dialing
  window that Airflow computed from the real clock (``data_interval_end + 4 hours``) means the same
  window here, however long the simulator has been running;
- the sped-up counter, ``elapsed() = real seconds since start * speed + advanced``.

Each call gets its own time line, anchored when it is queued at calendar ``W0`` with the counter at
``E0``: the call's time is ``W0 + (elapsed() - E0)``. Dialing, ringing, talking, reattempt waits and the
wait for a future ``start_timestamp`` therefore run ``speed`` times faster from the moment the call is
queued, while the calendar does not run ahead. The price: a call's reported timestamps (its events,
status answers, callbacks) run ahead of the wall clock while it is in progress; at ``speed=600`` a
call queued ten real seconds ago reports times 100 minutes after its queueing.

With an injected frozen ``clock`` only :meth:`SimClock.advance` moves time, by the same amount for the
calendar and for every call, so every call's time equals ``now()``: tests are deterministic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Anchor:
    """Where a call's time line meets the clock: the calendar and the sped-up counter at queueing."""

    calendar: float
    elapsed: float

    def time_at(self, elapsed: float) -> float:
        """The call's time when the counter reads ``elapsed``."""
        return self.calendar + (elapsed - self.elapsed)

    def elapsed_at(self, call_time: float) -> float:
        """The counter reading at which the call's time reaches ``call_time``."""
        return self.elapsed + (call_time - self.calendar)


class SimClock:
    """The calendar and the sped-up counter, shared by the call store and the callback scheduler.

    ``started_ago`` counts that many real seconds as already run (sped up), as for a simulator started
    long before: by design it changes no call, which is what tests of that case check.
    """

    def __init__(
        self, speed: float = 1.0, clock: Callable[[], float] | None = None, started_ago: float = 0.0
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, not {speed!r}")
        if started_ago < 0:
            raise ValueError(f"started_ago cannot be negative, not {started_ago!r}")
        self.speed = float(speed)
        self._real = clock or time.time
        self._origin = self._real() - started_ago
        self._advanced = 0.0
        self._lock = threading.Lock()

    def _read(self) -> tuple[float, float]:
        """(calendar, counter) from one reading of the real clock."""
        real = self._real()
        with self._lock:
            advanced = self._advanced
        return real + advanced, (real - self._origin) * self.speed + advanced

    def now(self) -> float:
        """The calendar: real Unix time plus whatever :meth:`advance` added."""
        return self._read()[0]

    def elapsed(self) -> float:
        """The sped-up counter: simulated seconds run since the start (``advance`` included)."""
        return self._read()[1]

    def anchor(self) -> Anchor:
        """A new call's anchor: the calendar and the counter, now."""
        return Anchor(*self._read())

    def time_of(self, anchor: Anchor) -> float:
        """The current time of the call anchored at ``anchor``."""
        return anchor.time_at(self.elapsed())

    def has_reached(self, anchor: Anchor, call_time: float) -> bool:
        """Whether the call anchored at ``anchor`` has reached its time ``call_time``.

        Compared on the counter, like the callback scheduler's heap, so that the two agree to the bit.
        """
        return self.elapsed() >= anchor.elapsed_at(call_time)

    def advance(self, seconds: float) -> float:
        """Move the calendar and every call's time forward by ``seconds``; returns the new calendar."""
        if seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            self._advanced += seconds
        return self.now()

    def real_seconds_until(self, elapsed: float) -> float:
        """Real seconds to wait for the counter to reach ``elapsed`` (0 when it has)."""
        return max(0.0, (elapsed - self.elapsed()) / self.speed)

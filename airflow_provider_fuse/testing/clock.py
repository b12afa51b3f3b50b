"""The simulated clock: real time sped up, plus whatever a test adds by hand.

``now() = real_epoch_at_start + elapsed_real * speed + advanced``. At ``speed=600`` a reattempt wait of
ten minutes passes in one real second; with an injected frozen ``clock`` only ``advance()`` moves time,
which makes tests deterministic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SimClock:
    """Simulated Unix time, shared by the call timelines and the callback scheduler."""

    def __init__(self, speed: float = 1.0, clock: Callable[[], float] | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, not {speed!r}")
        self.speed = float(speed)
        self._real = clock or time.time
        self._origin = self._real()
        self._advanced = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            advanced = self._advanced
        return self._origin + (self._real() - self._origin) * self.speed + advanced

    def advance(self, seconds: float) -> float:
        """Jump forward by simulated ``seconds``; returns the new simulated time."""
        if seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            self._advanced += seconds
        return self.now()

    def real_seconds_until(self, sim_time: float) -> float:
        """Real seconds to wait for the simulated clock to reach ``sim_time`` (0 when it has)."""
        return max(0.0, (sim_time - self.now()) / self.speed)

"""Fault injection: make chosen requests fail the ways a real API does.

``429``/``500``/``503`` refuse the request before it takes effect; ``slow``, ``drop``, ``malformed``,
``xml`` (the answer as XML) and ``no_id`` (``{"success": true}``: no call id, no Link header) let it
take effect (a queue request does queue the call) and then spoil the response, which is the case a
client must not blindly retry.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from airflow_provider_fuse.testing.ledger import ENDPOINTS

REFUSALS = ("429", "500", "503")
SPOILERS = ("slow", "drop", "malformed", "xml", "no_id")
FAULT_ENDPOINTS = (*(e for e in ENDPOINTS if e not in ("callback", "other")), "*")


@dataclass(frozen=True)
class Fault:
    """One fault to apply to one request."""

    kind: str
    retry_after: float | None = None
    delay: float = 0.0

    @property
    def refuses(self) -> bool:
        return self.kind in REFUSALS


@dataclass
class _Rule:
    endpoint: str
    fault: Fault
    remaining: int | None
    fraction: float | None


class Faults:
    """Injected faults, matched in injection order; ``fraction`` draws from a seeded RNG."""

    def __init__(self, seed: int | None = 0) -> None:
        self._rules: list[_Rule] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def inject(
        self,
        endpoint: str,
        kind: str | int,
        count: int | None = None,
        fraction: float | None = None,
        retry_after: float | None = None,
        delay: float | None = None,
    ) -> None:
        """Fault the next ``count`` requests to ``endpoint`` ("*" = any), or each with probability ``fraction``.

        ``count`` defaults to 1 without ``fraction`` and to unlimited with it (until :meth:`clear`).
        ``retry_after`` sets the Retry-After header of 429 (default 1) and 503; ``delay`` is required by
        ``slow``: seconds before the response is sent.
        """
        kind = str(kind)
        if endpoint not in FAULT_ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {', '.join(FAULT_ENDPOINTS)}")
        if kind not in REFUSALS + SPOILERS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(REFUSALS + SPOILERS)}")
        if kind == "slow" and not delay:
            raise ValueError("a slow fault needs delay= (seconds)")
        if fraction is not None and not 0 < fraction <= 1:
            raise ValueError("fraction must be in (0, 1]")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1")
        if kind == "429" and retry_after is None:
            retry_after = 1
        fault = Fault(kind, retry_after, delay or 0.0)
        remaining = count if count is not None or fraction is not None else 1
        with self._lock:
            self._rules.append(_Rule(endpoint, fault, remaining, fraction))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def draw(self, endpoint: str) -> Fault | None:
        """The fault for one request to ``endpoint``, if any rule fires; used up counts are removed."""
        with self._lock:
            for rule in self._rules:
                if rule.endpoint not in (endpoint, "*"):
                    continue
                if rule.fraction is not None and self._rng.random() >= rule.fraction:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                return rule.fault
        return None

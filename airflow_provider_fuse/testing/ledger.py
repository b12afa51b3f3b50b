"""The ledger: every request the simulator received (and every result_url POST it made), in order.

Tests assert on it, e.g. "exactly one queue request reached Fuse" after a read timeout.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

ENDPOINTS = ("queue", "bulk_queue", "status", "cancel", "callback", "other")


@dataclass(frozen=True)
class LedgerEntry:
    """One request.

    ``status`` is what was sent back (None when the connection was dropped). ``processed`` says whether
    the request took effect (a 2xx outcome before any delivery fault). ``call_ids`` are the calls
    queued, canceled or asked about; ``variables`` what the simulator read as each queued call's
    variables, in ``call_ids`` order (in its ``variables_format`` for a queue request, the CSV columns
    for a bulk one). ``sim_time`` is the simulator's calendar (``FuseSimulator.now()``) when the
    request was answered: for a queue request, the calls' queueing time; a call's own time runs
    ahead of it. For ``callback`` entries ``path`` is the result_url, ``status`` the receiver's
    answer and ``error`` why delivery failed.
    """

    time: float
    sim_time: float
    method: str
    path: str
    endpoint: str
    status: int | None
    form: dict[str, str] = field(default_factory=dict)
    call_ids: list[str] = field(default_factory=list)
    variables: list[dict[str, Any]] = field(default_factory=list)
    fault: str | None = None
    processed: bool = False
    error: str | None = None


class Ledger:
    """A thread-safe, append-only list of :class:`LedgerEntry`."""

    def __init__(self) -> None:
        self._entries: list[LedgerEntry] = []
        self._lock = threading.Lock()

    def record(self, entry: LedgerEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self, endpoint: str | None = None) -> list[LedgerEntry]:
        """A copy of the entries, optionally only those of one endpoint."""
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {', '.join(ENDPOINTS)}")
        with self._lock:
            return [e for e in self._entries if endpoint is None or e.endpoint == endpoint]

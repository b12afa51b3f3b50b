"""``result_url`` callbacks: POST a call's final call_details when it ends, best effort.

Each call's end is known when it is queued (or canceled), as a reading of the clock's sped-up counter
(see :mod:`~airflow_provider_fuse.testing.clock`), so one thread sleeps on a heap until the earliest
end instead of polling every call.
"""

from __future__ import annotations

import heapq
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from airflow_provider_fuse.testing.calls import Call
from airflow_provider_fuse.testing.clock import SimClock
from airflow_provider_fuse.testing.ledger import Ledger, LedgerEntry

logger = logging.getLogger("airflow_provider_fuse.testing")

# A receiver on a busy test machine (Airflow's API server beside the whole suite) may take seconds.
DELIVERY_TIMEOUT = 30.0
# Fuse posts straight to the result_url: no proxy from this process's environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class CallbackScheduler:
    """Wakes when the next call with a result_url ends, and delivers its callback."""

    def __init__(
        self, clock: SimClock, claim: Callable[[str], Call | None], deliver: Callable[[Call], None]
    ) -> None:
        self._clock = clock
        self._claim = claim
        self._deliver = deliver
        self._heap: list[tuple[float, str]] = []  # (counter reading at the call's end, call id)
        self._wakeup = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def schedule(self, calls: list[Call]) -> None:
        """Expect a callback at each call's end (calls without a result_url are skipped)."""
        with self._wakeup:
            for call in calls:
                if call.spec.options.result_url:
                    heapq.heappush(self._heap, (call.terminal_elapsed, call.call_id))
            self._wakeup.notify()

    def wake(self) -> None:
        """Re-check the clock now (after the simulated time jumped)."""
        with self._wakeup:
            self._wakeup.notify()

    def start(self) -> None:
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="fuse-simulator-callbacks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wakeup:
            self._stopped = True
            self._wakeup.notify()
        if self._thread is not None:
            self._thread.join(timeout=DELIVERY_TIMEOUT + 1)

    def _next_due(self) -> str | None:
        """The id of the next call whose end has come, waiting for it; None once stopped."""
        with self._wakeup:
            while not self._stopped:
                if self._heap and self._heap[0][0] <= self._clock.elapsed():
                    return heapq.heappop(self._heap)[1]
                self._wakeup.wait(self._clock.real_seconds_until(self._heap[0][0]) if self._heap else None)
        return None

    def _run(self) -> None:
        while (call_id := self._next_due()) is not None:
            call = self._claim(call_id)
            if call is not None:
                self._deliver(call)


def post_result(call: Call, clock: SimClock, ledger: Ledger) -> None:
    """POST the call's final call_details as JSON to its result_url; the outcome goes to the ledger."""
    url = call.spec.options.result_url or ""
    body = json.dumps(call.details_at(call.terminal_at)).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    status: int | None = None
    error: str | None = None
    try:
        with _OPENER.open(request, timeout=DELIVERY_TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except (OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    logger.info("result_url callback for call %s: %s", call.call_id, status or error)
    ledger.record(
        LedgerEntry(
            time=time.time(),
            sim_time=clock.now(),
            method="POST",
            path=url,
            endpoint="callback",
            status=status,
            call_ids=[call.call_id],
            processed=status is not None and 200 <= status < 300,
            error=error,
        )
    )

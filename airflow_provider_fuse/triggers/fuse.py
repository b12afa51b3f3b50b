"""FuseCallTrigger: wait for a call in the triggerer, so the task holds no worker slot.

It polls through ``FuseHook.aget_call`` (aiohttp, one shared session per event loop), rides out
transient errors until its own deadline, and yields one small JSON event:
``{"status", "call_id", "call_details", "message"}`` where ``status`` is the call's terminal
status, ``"timeout"`` or ``"error"``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_fuse import DEFAULT_CONN_ID
from airflow_provider_fuse.exceptions import (
    FuseConnectionError,
    FuseError,
    FuseRateLimitError,
    FuseResponseError,
    FuseServerError,
    FuseWaitTimeout,
)
from airflow_provider_fuse.models import CallDetails

TIMEOUT = "timeout"
ERROR = "error"
#: Failures that say nothing about the call: keep waiting (the hook already backed off).
TRANSIENT_ERRORS = (FuseConnectionError, FuseRateLimitError, FuseServerError, FuseResponseError)


def call_event(status: str, call_id: str, details: CallDetails | None, message: str) -> dict[str, Any]:
    return {
        "status": status,
        "call_id": call_id,
        "call_details": details.to_dict() if details else None,
        "message": message,
    }


def outcome(details: CallDetails) -> dict[str, Any]:
    """A terminal call's task result: its details when completed, else ``FuseCallFailed``."""
    if details.succeeded:
        return details.to_dict()
    raise details.failure()


def outcome_from_event(event: dict[str, Any]) -> dict[str, Any]:
    """Decide a task from a trigger event with the same rules as the synchronous wait."""
    status = event.get("status")
    if status == TIMEOUT:
        raise FuseWaitTimeout(event.get("message") or "Waiting for the Fuse call timed out.")
    if status == ERROR or not event.get("call_details"):
        raise FuseError(event.get("message") or f"Waiting for Fuse call {event.get('call_id')} failed.")
    return outcome(CallDetails.from_dict(event["call_details"]))


def timeout_message(call_id: str, details: CallDetails | None, deadline: float) -> str:
    status = details.status if details else "unknown"
    return (
        f"Fuse call {call_id} was still {status!r} at the deadline "
        f"({time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(deadline))}Z). The call itself was NOT "
        "cancelled: it may still ring. Cancelling is deployment-wide, see CancelPendingCallsOperator."
    )


class FuseCallTrigger(BaseTrigger):
    """Poll one Fuse call until it is terminal or ``deadline`` (Unix seconds) passes.

    :param call_id: the Fuse call id.
    :param fuse_conn_id: Airflow connection of type ``fuse``.
    :param poll_interval: seconds between status requests.
    :param deadline: Unix time after which the wait ends with a ``timeout`` event; None waits forever.
    """

    def __init__(
        self,
        call_id: str,
        fuse_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 30.0,
        deadline: float | None = None,
    ):
        super().__init__()
        self.call_id = str(call_id)
        self.fuse_conn_id = fuse_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "call_id": self.call_id,
                "fuse_conn_id": self.fuse_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_fuse.hooks.fuse import FuseHook

        hook = FuseHook(self.fuse_conn_id)
        details: CallDetails | None = None
        try:
            async with hook.hold_session():
                while True:
                    try:
                        details = await hook.aget_call(self.call_id)
                    except TRANSIENT_ERRORS as err:
                        self.log.warning("Fuse call %s: status not read, will retry: %s", self.call_id, err)
                    else:
                        if details.is_terminal:
                            message = f"Fuse call {self.call_id} ended {details.status!r}."
                            yield TriggerEvent(call_event(details.status, self.call_id, details, message))
                            return
                    remaining = None if self.deadline is None else self.deadline - time.time()
                    if remaining is not None and remaining <= 0:
                        message = timeout_message(self.call_id, details, self.deadline or 0)
                        yield TriggerEvent(call_event(TIMEOUT, self.call_id, details, message))
                        return
                    await asyncio.sleep(
                        self.poll_interval if remaining is None else min(self.poll_interval, remaining)
                    )
        except FuseError as err:
            yield TriggerEvent(call_event(ERROR, self.call_id, details, str(err)))

    async def on_kill(self) -> None:
        """Airflow 3.3+: the task was killed by a user. Fuse cannot cancel one call, so nothing is cancelled."""
        self.log.warning(
            "Task killed while waiting for Fuse call %s; the call is NOT cancelled in Fuse (cancelling is "
            "deployment-wide: use CancelPendingCallsOperator if you mean it).",
            self.call_id,
        )

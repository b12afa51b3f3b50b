"""Operators that queue Fuse calls, wait for them, and cancel a deployment's pending calls.

Import-light on purpose (DAG files import this module at every parse): the hook, the HTTP clients,
phonenumbers and the trigger load only when a task runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.configuration import conf
from airflow.sdk import BaseOperator

from airflow_provider_fuse import DEFAULT_CONN_ID

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_fuse.hooks.fuse import FuseHook
    from airflow_provider_fuse.models import CallDetails, CallRequest
    from airflow_provider_fuse.resume import TaskMemory

#: Task state store keys (renaming them breaks resuming tries already in flight).
CALL_ID_KEY = "fuse_call_id"
QUEUE_SENT_KEY = "fuse_queue_request_sent_at"

CALL_FIELDS = (
    "phone_number",
    "caller_id",
    "post_dial",
    "start_timestamp",
    "end_timestamp",
    "max_attempts",
    "reattempt_wait",
    "variables",
    "result_url",
    "is_pci",
    "calling_hours",
    "timezone",
)


def _seconds(value: float | timedelta | None) -> float | None:
    return value.total_seconds() if isinstance(value, timedelta) else value


class QueueCallOperator(BaseOperator):
    """Queue one outbound call through Plum Fuse and, by default, wait for its outcome.

    Every call field is templated, values inside ``variables`` included. Bad input fails the task
    before any request. The call id is pushed to XCom (key ``call_id``) and kept in the task state
    store (Airflow 3.3+) before any wait, so a retried task re-attaches to its call instead of
    ringing the person again.

    :param application_id: Fuse application id.
    :param deployment_id: Fuse deployment id.
    :param phone_number: destination: E.164, national digits, or ``tel:`` URI with ``;ani=``/``;postd=``.
    :param caller_id: caller id (ANI) shown to the callee; Fuse has no default.
    :param post_dial: DTMF digits sent after connecting.
    :param start_timestamp: when dialing may begin: aware datetime, ISO-8601, Unix seconds or timedelta.
    :param end_timestamp: when to stop attempting, same forms.
    :param max_attempts: 1 to 10 attempts; above 1 needs ``reattempt_wait``.
    :param reattempt_wait: seconds (60 to 86400) or timedelta between attempts.
    :param variables: application variables, a dict or JSON object string.
    :param result_url: https URL Fuse POSTs the final call details to.
    :param is_pci: run the connected call in Fuse's HIPAA/PCI environment; its variables are never logged.
    :param calling_hours: the callee's local hours, e.g. ``("08:00", "21:00")``: the start moves to
        the next allowed instant and the end is clipped to the hours' close (zone from the number).
    :param timezone: IANA zone overriding the one found from the number, for ``calling_hours``.
    :param wait_for_completion: wait for a terminal status; if False, return ``{"call_id": ...}`` at once.
    :param deferrable: wait in the triggerer (frees the worker slot) instead of polling in the worker.
    :param poll_interval: seconds between status checks.
    :param timeout: longest wait (seconds or timedelta); on expiry the task fails, the call is NOT cancelled.
    :param redial_on_retry: let a retried task queue a new call when the earlier one failed or its
        queue request was left unanswered. Off by default: nobody is called twice by accident.
    :param fuse_conn_id: Airflow connection of type ``fuse``.
    """

    template_fields: Sequence[str] = ("application_id", "deployment_id", *CALL_FIELDS)
    template_fields_renderers = {"variables": "json"}
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        application_id: int | str,
        deployment_id: int | str,
        phone_number: str,
        caller_id: str | None = None,
        post_dial: str | None = None,
        start_timestamp: Any = None,
        end_timestamp: Any = None,
        max_attempts: int | str | None = None,
        reattempt_wait: int | str | timedelta | None = None,
        variables: dict[str, Any] | str | None = None,
        result_url: str | None = None,
        is_pci: bool | int | str = False,
        calling_hours: tuple[str, str] | str | None = None,
        timezone: str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 30,
        timeout: float | timedelta | None = None,
        redial_on_retry: bool = False,
        fuse_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.application_id = application_id
        self.deployment_id = deployment_id
        self.phone_number = phone_number
        self.caller_id = caller_id
        self.post_dial = post_dial
        self.start_timestamp = start_timestamp
        self.end_timestamp = end_timestamp
        self.max_attempts = max_attempts
        self.reattempt_wait = reattempt_wait
        self.variables = variables
        self.result_url = result_url
        self.is_pci = is_pci
        self.calling_hours = calling_hours
        self.timezone = timezone
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.redial_on_retry = redial_on_retry
        self.fuse_conn_id = fuse_conn_id

    @property
    def hook(self) -> FuseHook:
        from airflow_provider_fuse.hooks.fuse import FuseHook

        return FuseHook(self.fuse_conn_id)

    def build_request(self, hook: FuseHook) -> CallRequest:
        """The validated request from the rendered fields; raises FuseValidationError first."""
        from airflow_provider_fuse.models import CallRequest

        return CallRequest(
            **{name: getattr(self, name) for name in CALL_FIELDS}, default_region=hook.settings.default_region
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_fuse.resume import TaskMemory

        hook = self.hook
        request = self.build_request(hook)
        for note in request.calling_notes:
            self.log.warning("Calling hours: %s", note)
        call_id = self._resume_or_queue(hook, request, TaskMemory(context))
        context["ti"].xcom_push(key="call_id", value=call_id)
        if not self.wait_for_completion:
            return {"call_id": call_id}
        return self._wait(hook, call_id)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Back from the triggerer: decide with the same rules as the synchronous wait."""
        from airflow_provider_fuse.triggers.fuse import outcome_from_event

        return outcome_from_event(event)

    # --- queueing, at most once ---

    def _resume_or_queue(self, hook: FuseHook, request: CallRequest, memory: TaskMemory) -> str:
        earlier = memory.get(CALL_ID_KEY)
        if earlier:
            details = hook.get_call(earlier)
            if not (details.is_terminal and not details.succeeded and self.redial_on_retry):
                self.log.info(
                    "Resuming Fuse call %s queued by an earlier try (now %r).", earlier, details.status
                )
                return str(earlier)
            self.log.warning(
                "Earlier Fuse call %s ended %r; redial_on_retry=True, so queueing a new call.",
                earlier,
                details.status,
            )
        elif memory.get(QUEUE_SENT_KEY):
            sent_at = memory.get(QUEUE_SENT_KEY)
            if not self.redial_on_retry:
                from airflow_provider_fuse.exceptions import FuseError

                raise FuseError(
                    f"An earlier try sent a queue request at {sent_at} and stopped before it learned the "
                    f"call id, so the call to {request.masked_phone} may be queued or placed already. Check "
                    "Fuse (or the callee) first; set redial_on_retry=True to queue again regardless."
                )
            self.log.warning(
                "An earlier try's queue request (%s) went unanswered; redialing as asked.", sent_at
            )
        return self._queue(hook, request, memory)

    def _queue(self, hook: FuseHook, request: CallRequest, memory: TaskMemory) -> str:
        from airflow_provider_fuse.exceptions import FuseError
        from airflow_provider_fuse.resume import NOT_PROTECTED

        if not memory.available:
            self.log.warning(NOT_PROTECTED)
        memory.set(QUEUE_SENT_KEY, datetime.now(timezone.utc).isoformat())
        try:
            call_id = hook.queue_call(self.application_id, self.deployment_id, request)
        except FuseError as error:
            if not error.call_may_be_queued:
                memory.delete(QUEUE_SENT_KEY)
            raise
        memory.set(CALL_ID_KEY, call_id)
        memory.delete(QUEUE_SENT_KEY)
        self.log.info("Queued Fuse call %s %s.", call_id, request.describe())
        return call_id

    # --- waiting ---

    def _wait(self, hook: FuseHook, call_id: str) -> dict[str, Any]:
        timeout = _seconds(self.timeout)
        deadline = time.time() + timeout if timeout is not None else None
        if self.deferrable:
            from airflow_provider_fuse.triggers.fuse import FuseCallTrigger, outcome

            details = hook.get_call(call_id)
            if details.is_terminal:
                return outcome(details)
            self.defer(
                trigger=FuseCallTrigger(call_id, self.fuse_conn_id, self.poll_interval, deadline),
                method_name="execute_complete",
            )
        return wait_in_worker(self, hook, call_id, self.poll_interval, deadline)


def wait_in_worker(
    task: BaseOperator, hook: FuseHook, call_id: str, poll_interval: float, deadline: float | None
) -> dict[str, Any]:
    """Poll in the worker until the call is terminal or the deadline passes (the sync twin of the trigger)."""
    from airflow_provider_fuse.exceptions import FuseWaitTimeout
    from airflow_provider_fuse.triggers.fuse import TRANSIENT_ERRORS, outcome, timeout_message

    details: CallDetails | None = None
    last_status = None
    while True:
        try:
            details = hook.get_call(call_id)
        except TRANSIENT_ERRORS as error:
            task.log.warning("Fuse call %s: status not read, will retry: %s", call_id, error)
        else:
            if details.status != last_status:
                task.log.info("Fuse call %s is %r.", call_id, details.status)
                last_status = details.status
            if details.is_terminal:
                return outcome(details)
        remaining = None if deadline is None else deadline - time.time()
        if remaining is not None and remaining <= 0:
            raise FuseWaitTimeout(timeout_message(call_id, details, deadline or 0))
        time.sleep(poll_interval if remaining is None else min(poll_interval, remaining))


class CancelPendingCallsOperator(BaseOperator):
    """Cancel EVERY pending call of a Fuse deployment, not only this DAG's.

    Fuse has no per-call cancel: this is a deliberate, deployment-wide act, never done implicitly.

    :param application_id: Fuse application id.
    :param deployment_id: Fuse deployment id whose pending calls are all cancelled.
    :param fuse_conn_id: Airflow connection of type ``fuse``.
    """

    template_fields: Sequence[str] = ("application_id", "deployment_id")
    ui_color = "#fbe8e8"

    def __init__(
        self,
        *,
        application_id: int | str,
        deployment_id: int | str,
        fuse_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.application_id = application_id
        self.deployment_id = deployment_id
        self.fuse_conn_id = fuse_conn_id

    def execute(self, context: Context) -> None:
        from airflow_provider_fuse.hooks.fuse import FuseHook

        self.log.warning(
            "Cancelling EVERY pending call of Fuse application %s deployment %s (all callers, not only this DAG).",
            self.application_id,
            self.deployment_id,
        )
        FuseHook(self.fuse_conn_id).cancel_pending_calls(self.application_id, self.deployment_id)
        self.log.info("Fuse accepted the cancel request.")

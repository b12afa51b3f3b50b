"""FuseCallNotifier: phone someone from a DAG or task callback ("the nightly load failed").

It queues the call and returns without waiting. It never raises: a failing notifier must not hide
the failure it reports, so problems are logged with their reason instead. Airflow may invoke a
callback twice: one failure event queues at most one call (per process, see ``resume``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from airflow_provider_fuse import DEFAULT_CONN_ID

if TYPE_CHECKING:
    from airflow.sdk import Context

#: The call fields a notifier takes; the others keep CallRequest's defaults (no window: call now).
NOTIFIER_FIELDS = (
    "phone_number",
    "caller_id",
    "variables",
    "max_attempts",
    "reattempt_wait",
    "calling_hours",
    "timezone",
)


def _event_key(context: Context) -> tuple[Any, ...]:
    """One failure event: a task try, or a DAG run for DAG-level callbacks."""
    ti = context.get("ti")
    if ti is not None:
        return ("ti", ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1), ti.try_number)
    dag_run = context.get("dag_run")
    dag = context.get("dag")
    return ("dag_run", getattr(dag, "dag_id", None), getattr(dag_run, "run_id", None))


class FuseCallNotifier(BaseNotifier):
    """Queue a Fuse call from a callback, e.g. ``on_failure_callback=FuseCallNotifier(...)``.

    All fields are templated with the callback's context: ``{{ dag.dag_id }}``, ``{{ ti.task_id }}``,
    ``{{ run_id }}``, ``{{ exception }}``... Calling hours are ignored unless given: an on-call page
    at 3 a.m. is the point.

    :param application_id: Fuse application id.
    :param deployment_id: Fuse deployment id.
    :param phone_number: who to call.
    :param caller_id: caller id (ANI) shown to the callee.
    :param variables: application variables, e.g. ``{"dag": "{{ dag.dag_id }}"}``.
    :param max_attempts: attempts to reach the callee (1 to 10; above 1 needs ``reattempt_wait``).
    :param reattempt_wait: seconds between attempts (60 to 86400).
    :param calling_hours: the callee's local hours, e.g. ``("08:00", "21:00")``; None (default) calls at once.
    :param timezone: IANA zone overriding the one found from the number, for ``calling_hours``.
    :param fuse_conn_id: Airflow connection of type ``fuse``.
    """

    template_fields: Sequence[str] = ("application_id", "deployment_id", *NOTIFIER_FIELDS)
    template_fields_renderers = {"variables": "json"}

    def __init__(
        self,
        *,
        application_id: int | str,
        deployment_id: int | str,
        phone_number: str,
        caller_id: str | None = None,
        variables: dict[str, Any] | str | None = None,
        max_attempts: int | str | None = None,
        reattempt_wait: int | str | None = None,
        calling_hours: tuple[str, str] | str | None = None,
        timezone: str | None = None,
        fuse_conn_id: str = DEFAULT_CONN_ID,
    ):
        super().__init__()
        self.application_id = application_id
        self.deployment_id = deployment_id
        self.phone_number = phone_number
        self.caller_id = caller_id
        self.variables = variables
        self.max_attempts = max_attempts
        self.reattempt_wait = reattempt_wait
        self.calling_hours = calling_hours
        self.timezone = timezone
        self.fuse_conn_id = fuse_conn_id

    def __call__(self, *args: Any) -> None:
        """Render a fresh copy for each callback (rendering is in place) and never raise."""
        try:
            BaseNotifier.__call__(copy.copy(self), *args)
        except Exception as error:
            self.log.error("FuseCallNotifier placed NO call: %s", error)

    def notify(self, context: Context) -> None:
        from airflow_provider_fuse.hooks.fuse import FuseHook
        from airflow_provider_fuse.models import CallRequest
        from airflow_provider_fuse.resume import ProcessMemory, already_sent, queue_call_once

        memory = ProcessMemory(("notifier", *_event_key(context)))
        if already_sent(memory):
            self.log.info("FuseCallNotifier: a call was already placed for this event; not calling twice.")
            return
        hook = FuseHook(self.fuse_conn_id)
        request = CallRequest(
            **{name: getattr(self, name) for name in NOTIFIER_FIELDS},
            default_region=hook.settings.default_region,
        )
        for note in request.calling_notes:
            self.log.warning("Calling hours: %s", note)
        call_id = queue_call_once(
            memory, lambda: hook.queue_call(self.application_id, self.deployment_id, request)
        )
        self.log.info("FuseCallNotifier queued Fuse call %s %s.", call_id, request.describe())

"""FuseCallNotifier: phone someone from a DAG or task callback ("the nightly load failed"), or from a
Deadline Alert in the triggerer ("the nightly DAG has not finished by 06:00").

It queues the call and returns without waiting. It never raises: a failing notifier must not hide
the failure it reports, so problems are logged with their reason instead.

Airflow may run a callback twice for one failure: in the task runner, then, when that process died
before reporting (a heartbeat timeout), in the dag-processor. One failure event queues at most one
call per notifier: what was sent is remembered in this process and in an Airflow Variable
``fuse_notifier_<digest>`` that both processes read (the task state store hangs in the
dag-processor and belongs to the next try in a retry callback). A missed deadline is one event
too, should the triggerer run its callback again after a restart. What remains: two processes
handling the same event at the same instant (read, then write: not atomic), and a Variable that
cannot be read or written (logged; the call is placed anyway).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
from collections.abc import Generator, Mapping, Sequence
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
    "result_url",
)


#: Prefix of the Variables that remember what a notifier sent (see the README: safe to delete a day on).
MEMORY_PREFIX = "fuse_notifier_"


def _field(record: Any, name: str) -> Any:
    """A field of a context record: an object in a task's context, a dict in a Deadline Alert's."""
    return record.get(name) if isinstance(record, Mapping) else getattr(record, name, None)


def _event(context: Context) -> dict[str, Any]:
    """One failure event: a task try, a DAG run (and how often it was cleared) for DAG-level callbacks,
    or one missed deadline of a DAG run for a Deadline Alert."""
    deadline = context.get("deadline")
    if deadline:
        dag_run = context.get("dag_run")
        return {
            "dag_id": _field(dag_run, "dag_id"),
            "run_id": _field(dag_run, "dag_run_id"),
            "deadline_id": _field(deadline, "id"),
        }
    ti = context.get("ti")
    if ti is not None:
        return {
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "map_index": getattr(ti, "map_index", -1),
            "try_number": ti.try_number,
        }
    dag_run = context.get("dag_run")
    return {
        "dag_id": getattr(context.get("dag"), "dag_id", None),
        "run_id": getattr(dag_run, "run_id", None),
        "clear_number": getattr(dag_run, "clear_number", 0),
    }


def _memory_name(secret: str, event: Mapping[str, Any], target: Sequence[Any]) -> str:
    """The Variable of one event and one notifier (who it calls, through which deployment).

    Keyed with the developer key, so that the name, which anyone who can list Variables sees, does
    not let them test guesses of the number.
    """
    message = json.dumps([event, list(target)], sort_keys=True, default=str).encode()
    return MEMORY_PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:40]


class FuseCallNotifier(BaseNotifier):
    """Queue a Fuse call from a callback, e.g. ``on_failure_callback=FuseCallNotifier(...)``.

    All fields are templated with the callback's context: ``{{ dag.dag_id }}``, ``{{ ti.task_id }}``,
    ``{{ run_id }}``, ``{{ exception }}``... Calling hours are ignored unless given: an on-call page
    at 3 a.m. is the point.

    As a Deadline Alert callback it runs in the triggerer:
    ``callback=AsyncCallback(FuseCallNotifier, kwargs={...})``. Airflow then passes a smaller
    context, the DAG run as the REST API shows it: ``{{ dag_run.dag_id }}``, ``{{ dag_run.dag_run_id }}``,
    ``{{ dag_run.queued_at }}``, ``{{ deadline.deadline_time }}``.

    :param application_id: Fuse application id.
    :param deployment_id: Fuse deployment id.
    :param phone_number: who to call.
    :param caller_id: caller id (ANI) shown to the callee.
    :param variables: application variables, e.g. ``{"dag": "{{ dag.dag_id }}"}``.
    :param max_attempts: attempts to reach the callee (1 to 10; above 1 needs ``reattempt_wait``).
    :param reattempt_wait: seconds between attempts (60 to 86400).
    :param calling_hours: the callee's local hours, e.g. ``("08:00", "21:00")``; None (default) calls at once.
    :param timezone: IANA zone overriding the one found from the number, for ``calling_hours``.
    :param result_url: https URL Fuse POSTs the call's final details to, or ``"airflow"``: the Fuse
        plugin of Airflow's API server records them on the failed task instance and emits an event on
        the deployment's asset (a DAG scheduled on it learns whether the on-call person answered).
        Task callbacks only: a DAG-level callback or a Deadline Alert has no task instance to name.
    :param fuse_conn_id: Airflow connection of type ``fuse`` (templated).
    :param context: the callback's context, given by Airflow when it runs the notifier in the triggerer.
    """

    template_fields: Sequence[str] = ("application_id", "deployment_id", *NOTIFIER_FIELDS, "fuse_conn_id")
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
        result_url: str | None = None,
        fuse_conn_id: str = DEFAULT_CONN_ID,
        context: Context | None = None,
    ):
        super().__init__(context)
        self.application_id = application_id
        self.deployment_id = deployment_id
        self.phone_number = phone_number
        self.caller_id = caller_id
        self.variables = variables
        self.max_attempts = max_attempts
        self.reattempt_wait = reattempt_wait
        self.calling_hours = calling_hours
        self.timezone = timezone
        self.result_url = result_url
        self.fuse_conn_id = fuse_conn_id

    def __call__(self, *args: Any) -> None:
        """Render a fresh copy for each callback (rendering is in place) and never raise."""
        try:
            BaseNotifier.__call__(copy.copy(self), *args)
        except Exception as error:
            self._placed_no_call(error)

    def __await__(self) -> Generator[Any, None, None]:
        """The triggerer's way (a Deadline Alert's ``AsyncCallback``): a fresh copy, never raise.

        Airflow logs a failing callback's kwargs, the phone number among them: nothing may escape.
        """
        try:
            yield from BaseNotifier.__await__(copy.copy(self))
        except Exception as error:
            self._placed_no_call(error)

    def _placed_no_call(self, error: Exception) -> None:
        self.log.error("FuseCallNotifier placed NO call: %s", error)

    async def async_notify(self, context: Context) -> None:
        """:meth:`notify` in a thread: the triggerer's event loop never waits on Fuse or on a Variable."""
        await asyncio.to_thread(self.notify, context)

    def notify(self, context: Context) -> None:
        from airflow_provider_fuse.hooks.fuse import FuseHook
        from airflow_provider_fuse.models import CallRequest
        from airflow_provider_fuse.operators.fuse import result_url_of
        from airflow_provider_fuse.resume import (
            LayeredMemory,
            ProcessMemory,
            SharedMemory,
            already_sent,
            queue_call_once,
        )

        hook = FuseHook(self.fuse_conn_id)
        fields = {name: getattr(self, name) for name in NOTIFIER_FIELDS}
        request = CallRequest(
            **{**fields, "result_url": result_url_of(self, hook, context.get("ti"))},
            default_region=hook.settings.default_region,
        )
        event = _event(context)
        target = (str(self.application_id), str(self.deployment_id), request.tel_uri)
        name = _memory_name(hook.settings.password, event, target)
        about = {**event, "to": request.masked_phone}
        memory = LayeredMemory(ProcessMemory(("notifier", name)), SharedMemory(name, about, self.log))
        if already_sent(memory):
            self.log.info(
                "FuseCallNotifier: a call to %s was already placed for this failure (Variable %s); "
                "not calling twice.",
                request.masked_phone,
                name,
            )
            return
        for note in request.calling_notes:
            self.log.warning("Calling hours: %s", note)

        def announce(call_id: str) -> None:
            self.log.info("FuseCallNotifier queued Fuse call %s %s.", call_id, request.describe())

        queue_call_once(
            memory, lambda: hook.queue_call(self.application_id, self.deployment_id, request), announce
        )

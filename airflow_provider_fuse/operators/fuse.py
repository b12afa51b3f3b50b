"""Operators that queue Fuse calls, wait for them, and cancel a deployment's pending calls.

Import-light on purpose (DAG files import this module at every parse): the hook, the HTTP clients,
phonenumbers and the trigger load only when a task runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import conf
from airflow.sdk import BaseOperator

from airflow_provider_fuse import DEFAULT_CONN_ID
from airflow_provider_fuse.fields import CALL_FIELDS, OPTION_FIELDS
from airflow_provider_fuse.links import CALL_ID_XCOM_KEY, FuseCallLink, FuseCampaignLink

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_fuse.campaign import (
        CallsInXCom,
        CampaignPlan,
        CampaignQueued,
        CampaignResult,
        CampaignXCom,
        Chunk,
        QueuedChunk,
    )
    from airflow_provider_fuse.hooks.fuse import FuseHook
    from airflow_provider_fuse.models import CallDetailsDict, CallRequest
    from airflow_provider_fuse.resume import ChunkRecord, Memory, TaskMemory
    from airflow_provider_fuse.waiting import CallsTriggerEvent

#: XCom keys of a campaign: each chunk's call ids (packed, see ``campaign.pack_ids``) and its rows
#: and masked numbers (``campaign.ChunkCalls``) as soon as Fuse answers (again by a retry that resumes
#: it: a new try starts with no XCom), what was queued (pushed before waiting), and the result when
#: the task fails after queueing (on success the result is the return value).
CHUNK_XCOM_KEY = "campaign_chunk_{index}"
CHUNK_CALLS_XCOM_KEY = "campaign_chunk_{index}_rows"
QUEUED_XCOM_KEY = "campaign_queued"
RESULT_XCOM_KEY = "campaign_result"


def hide_pci_variables(is_pci: Any, variables: Any) -> None:
    """Register an ``is_pci`` call's rendered variable values with Airflow's secrets masker.

    Airflow redacts what the masker knows before it stores rendered fields, so the Rendered Template
    view and the task log show ``***`` without users listing names in ``sensitive_var_conn_names``.
    Airflow's own rules apply (values shorter than ``[logging] min_length_masked_secret`` stay).
    """
    from airflow.providers.common.compat.sdk import mask_secret

    from airflow_provider_fuse.exceptions import FuseValidationError
    from airflow_provider_fuse.validation import flag

    try:
        if not flag("is_pci", is_pci):
            return
    except FuseValidationError:
        return  # execute() reports the bad flag before any request
    if isinstance(variables, str):
        try:
            variables = json.loads(variables)
        except ValueError:
            mask_secret(variables)
            return
    values = variables.values() if isinstance(variables, Mapping) else ()
    for value in values:  # nested values are masked one by one by Airflow; numbers as their text
        if value is not None and not isinstance(value, bool):  # masking "false" would hide it everywhere
            mask_secret(value if isinstance(value, (str, dict, list)) else str(value))


def check_task_settings(task: Any, hook: FuseHook) -> None:
    """Fail on bad ids, poll interval, timeout or rate before any request (resuming sends one first)."""
    from airflow_provider_fuse.validation import path_id, request_rate

    path_id("application_id", task.application_id)
    path_id("deployment_id", task.deployment_id)
    wait_settings(task, hook)
    if hasattr(task, "max_requests_per_second"):
        request_rate(task.max_requests_per_second, loopback=hook.settings.loopback)


def wait_settings(task: Any, hook: FuseHook) -> tuple[float, float | None]:
    """A task's ``poll_interval`` and ``timeout`` (None: no deadline) in seconds."""
    from airflow_provider_fuse import validation

    return validation.wait_settings(task.poll_interval, task.timeout, loopback=hook.settings.loopback)


def give_up_unknown_at(requests: Sequence[CallRequest]) -> float:
    """When calls still reporting only unknown statuses end ``unknown`` (see ``waiting.UnknownStatuses``)."""
    from airflow_provider_fuse import waiting

    return waiting.give_up_unknown_at(requests, time.time())


def result_url_of(task: Any, hook: FuseHook, ti: Any) -> str | None:
    """``task.result_url``, or for ``"airflow"`` the callback address of ``ti``'s calls
    (:func:`~airflow_provider_fuse.callbacks.resolve_result_url`): FuseValidationError before any request."""
    from airflow_provider_fuse.callbacks import resolve_result_url

    return resolve_result_url(
        task.result_url,
        conn_id=task.fuse_conn_id,
        application_id=task.application_id,
        deployment_id=task.deployment_id,
        callback_secret=hook.settings.callback_secret,
        ti=ti,
    )


def callbacks_until_of(task: Any, requests: Sequence[CallRequest]) -> float | None:
    """Until when the wait relies on callbacks alone (:func:`~airflow_provider_fuse.callbacks.callbacks_until`);
    None when ``task.result_url`` is not ``"airflow"``."""
    from airflow_provider_fuse import callbacks

    return (
        callbacks.callbacks_until(requests, time.time())
        if callbacks.wants_callbacks(task.result_url)
        else None
    )


def ti_coordinates(ti: Any) -> dict[str, Any]:
    """What names a task instance in XCom: dag_id, run_id, task_id, map_index (-1 when unmapped)."""
    index = getattr(ti, "map_index", None)
    return {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": -1 if index is None else int(index),
    }


def task_memory(task: Any, hook: FuseHook, context: Context, requests: Sequence[CallRequest]) -> TaskMemory:
    """The task instance's memory, whose keys outlive every retry of ``task`` and its calls."""
    from airflow_provider_fuse import resume

    calls = resume.calls_end_within(requests, time.time())
    wait = wait_settings(task, hook)[1] if task.wait_for_completion else 0.0
    return resume.TaskMemory(context, resume.retention(task, calls, wait))


class QueueCallOperator(BaseOperator):
    """Queue one outbound call through Plum Fuse and, by default, wait for its outcome.

    Every call field is templated, values inside ``variables`` included. Bad input fails the task
    before any request. As soon as Fuse answers, the call id is logged and pushed to XCom (key
    ``call_id``), then kept in the task state store (Airflow 3.3+) before any wait, so a retried task
    re-attaches to its call instead of ringing the person again. A task a person clears calls again,
    unless its earlier call is still in progress (see :mod:`airflow_provider_fuse.resume`).

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
    :param result_url: https URL Fuse POSTs the final call details to, or ``"airflow"``: the Fuse
        plugin of Airflow's API server receives it (see docs/callbacks.md), and the wait learns the
        outcome from it with no status request, asking Fuse only when no callback came by the end of
        the dialing window plus ``callbacks.CALLBACK_GRACE_SECONDS``.
    :param is_pci: run the connected call in Fuse's HIPAA/PCI environment; its variables are never
        logged, and their rendered values are masked (``***``) in the Rendered Template view.
    :param calling_hours: the callee's local hours, e.g. ``("08:00", "21:00")``: the start moves to
        the next allowed instant and the end is clipped to the hours' close (zone from the number).
    :param timezone: IANA zone overriding the one found from the number, for ``calling_hours``.
    :param wait_for_completion: wait for a terminal status; if False, return ``{"call_id": ...}`` at once.
    :param deferrable: wait in the triggerer (frees the worker slot) instead of polling in the worker.
    :param poll_interval: seconds between status checks.
    :param timeout: longest wait (seconds or timedelta); on expiry the task fails, the call is NOT cancelled.
    :param redial_on_retry: let a retried task queue a new call when the earlier one failed or its
        queue request was left unanswered. Off by default: nobody is called twice by accident.
    :param fuse_conn_id: Airflow connection of type ``fuse`` (templated).
    """

    template_fields: Sequence[str] = ("application_id", "deployment_id", *CALL_FIELDS, "fuse_conn_id")
    template_fields_renderers = {"variables": "json"}
    ui_color = "#e8f1fb"
    operator_extra_links = (FuseCallLink(),)

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

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render as Airflow does, then mask the values of ``is_pci`` variables before they are stored."""
        super().render_template_fields(context, jinja_env)
        hide_pci_variables(self.is_pci, self.variables)

    def build_request(self, hook: FuseHook, ti: Any = None) -> CallRequest:
        """The validated request from the rendered fields, ``result_url="airflow"`` resolved for the
        task instance ``ti``; raises FuseValidationError first."""
        from airflow_provider_fuse.models import CallRequest

        fields = {name: getattr(self, name) for name in CALL_FIELDS}
        return CallRequest(
            **{**fields, "result_url": result_url_of(self, hook, ti)},
            default_region=hook.settings.default_region,
        )

    def execute(self, context: Context) -> CallDetailsDict | dict[str, str]:
        hook = self.hook
        self._ti = context["ti"]  # where the call id goes as soon as Fuse answers it
        request = self.build_request(hook, self._ti)
        check_task_settings(self, hook)
        for note in request.calling_notes:
            self.log.warning("Calling hours: %s", note)
        call_id = self._resume_or_queue(hook, request, task_memory(self, hook, context, [request]))
        if not self.wait_for_completion:
            return {"call_id": call_id}
        self._give_up_unknown = give_up_unknown_at([request])
        self._callbacks_until = callbacks_until_of(self, [request])
        return self._wait(hook, call_id)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> CallDetailsDict:
        """Back from the triggerer: decide with the same rules as the synchronous wait."""
        from airflow_provider_fuse.waiting import outcome_from_event

        return outcome_from_event(event)

    def _resume_or_queue(self, hook: FuseHook, request: CallRequest, memory: Memory) -> str:
        """The call an earlier try queued, or a new one queued at most once; in XCom either way."""
        from airflow_provider_fuse import resume

        earlier = resume.resume_call(
            memory,
            hook.get_call,
            redial_on_retry=self.redial_on_retry,
            what=f"the call to {request.masked_phone}",
            log=self.log,
        )
        if earlier is not None:
            self._ti.xcom_push(key=CALL_ID_XCOM_KEY, value=earlier)
            return earlier
        resume.warn_if_unprotected(self.log, memory)

        def announce(call_id: str) -> None:  # before the id is stored: nothing can lose it first
            self.log.info("Queued Fuse call %s %s.", call_id, request.describe())
            self._ti.xcom_push(key=CALL_ID_XCOM_KEY, value=call_id)

        return resume.queue_call_once(
            memory, lambda: hook.queue_call(self.application_id, self.deployment_id, request), announce
        )

    def _wait(self, hook: FuseHook, call_id: str) -> CallDetailsDict:
        from airflow_provider_fuse import waiting

        poll_interval, timeout = wait_settings(self, hook)
        deadline = waiting.deadline_after(timeout)
        give_up = getattr(self, "_give_up_unknown", None)  # set by execute (a subclass may not)
        until = getattr(self, "_callbacks_until", None)
        if self.deferrable:
            from airflow_provider_fuse.triggers.fuse import FuseCallTrigger

            # With callbacks the trigger reads the record first: no status request before deferring.
            ended = (
                None
                if until is not None
                else waiting.ended_before_deferring(hook, call_id, self.log, deadline)
            )
            if ended is not None:
                return ended
            self.defer(
                trigger=FuseCallTrigger(
                    call_id,
                    self.fuse_conn_id,
                    poll_interval,
                    deadline,
                    give_up,
                    callbacks_until=until,
                    callbacks_ti=None if until is None else ti_coordinates(self._ti),
                ),
                method_name="execute_complete",
            )
        callbacks = None if until is None else waiting.Callbacks(self._ti, until)
        return waiting.wait_in_worker(self, hook, call_id, poll_interval, deadline, give_up, callbacks)


# --- campaigns ---------------------------------------------------------------------------------


class QueueCallsOperator(BaseOperator):
    """Queue many calls through Fuse's bulk upload and, by default, wait for all of them at once.

    Every row is validated before anything is sent; bad rows are reported together (row number,
    field, masked value, rule). Valid rows go out in chunks of ``chunk_size`` rows per upload; rows
    whose calling hours give another window (another time zone) go in uploads of their own, since
    Fuse applies one window per upload. Each chunk's call ids are pushed to XCom (``campaign_chunk_<i>``)
    as soon as Fuse answers, then kept in the task state store (Airflow 3.3+) before any wait, so a
    retried task never uploads a chunk twice. One trigger (or one loop in the worker) tracks every call.

    The return value is a :class:`~airflow_provider_fuse.campaign.CampaignResult` dict (keys in
    :mod:`airflow_provider_fuse.campaign`); downstream tasks read it with
    ``CampaignResult.from_xcom(value)``. When the task fails after queueing (the success policy,
    the deadline, a Fuse error), the same dict is pushed under the XCom key ``campaign_result``.
    Before waiting, what was queued is pushed under ``campaign_queued`` (call ids and rows packed
    in runs, see ``CampaignPlan.queued``).

    :param application_id: Fuse application id.
    :param deployment_id: Fuse deployment id.
    :param calls: a list of dicts (``phone_number``; optional ``caller_id``, ``post_dial`` and a
        ``variables`` dict), an XComArg returning one, or a CSV file whose header names a
        ``phone_number`` column, optional ``caller_id``/``post_dial`` columns, and variables: its
        absolute local path, an ``ObjectStoragePath``, or a URL (``file://``, ``s3://aws_default@bucket/
        calls.csv``, ``gs://``...: any scheme Airflow's object storage has a provider for).
    :param start_timestamp: when dialing may begin (every call): aware datetime, ISO-8601, Unix
        seconds or timedelta.
    :param end_timestamp: when to stop attempting, same forms.
    :param max_attempts: 1 to 10 attempts per call; above 1 needs ``reattempt_wait``.
    :param reattempt_wait: seconds (60 to 86400) or timedelta between attempts.
    :param result_url: https URL Fuse POSTs each call's final details to, or ``"airflow"``: the Fuse
        plugin of Airflow's API server receives them, and the wait polls only the calls whose callback
        did not come by the end of the dialing window plus ``callbacks.CALLBACK_GRACE_SECONDS``.
    :param is_pci: run connected calls in Fuse's HIPAA/PCI environment; variables of rows given inline
        are masked (``***``) in the Rendered Template view.
    :param calling_hours: the callees' local hours, e.g. ``("09:00", "20:00")``: each number's own zone.
    :param timezone: IANA zone overriding every number's zone, for ``calling_hours``.
    :param chunk_size: rows per bulk upload, 1 to 5,000. Keep it fixed between tries of a run.
    :param skip_invalid: queue the valid rows and list the invalid ones in the result's ``skipped``
        instead of failing before any request.
    :param allow_duplicates: allow a number (with the same post-dial digits) in several rows; by
        default a repeated number is an invalid row, so nobody is called twice by one campaign.
    :param wait_for_completion: wait until every call ended; if False, return at once with every
        call ``queued``.
    :param deferrable: wait in the triggerer (frees the worker slot) instead of polling in the worker.
    :param poll_interval: shortest gap in seconds between two status requests for one call.
    :param timeout: longest wait (seconds or timedelta); on expiry the task fails, nothing is cancelled.
    :param min_completed_ratio: the success policy: the task fails when fewer than this share of the
        queued calls completed. The default 0.0 never fails on outcomes: people not answering is the
        normal life of a campaign, a failed task would only retry without calling anyone again, and
        downstream tasks act on ``not_reached``. Raise it to be alerted when reach drops.
    :param max_requests_per_second: ceiling on status requests while waiting (Fuse publishes no rate
        limit and warns against floods).
    :param reupload_unanswered: let a retried task upload again a chunk whose earlier upload went
        unanswered (it may call those people twice). Off by default. Calls that failed are never
        queued again by a retry; start a follow-up campaign from ``not_reached`` instead.
    :param result_path: where to write every call's outcome as CSV (``row,call_id,phone,status,attempts``,
        masked numbers) when the task ends: an absolute local path, a URL (``s3://aws_default@bucket/
        results.csv``...) or an ``ObjectStoragePath``; see ``airflow_provider_fuse.result_file``.
        The task's XCom lists at most 5,000 calls; this file lists them all.
    :param fuse_conn_id: Airflow connection of type ``fuse`` (templated).
    """

    template_fields: Sequence[str] = (
        "application_id",
        "deployment_id",
        "calls",
        *OPTION_FIELDS,
        "chunk_size",
        "skip_invalid",
        "allow_duplicates",
        "min_completed_ratio",
        "result_path",
        "fuse_conn_id",
    )
    template_fields_renderers = {"calls": "json"}
    operator_extra_links = (FuseCampaignLink(),)
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        application_id: int | str,
        deployment_id: int | str,
        calls: Any,
        start_timestamp: Any = None,
        end_timestamp: Any = None,
        max_attempts: int | str | None = None,
        reattempt_wait: int | str | timedelta | None = None,
        result_url: str | None = None,
        is_pci: bool | int | str = False,
        calling_hours: tuple[str, str] | str | None = None,
        timezone: str | None = None,
        chunk_size: int | str = 1000,
        skip_invalid: bool | str = False,
        allow_duplicates: bool | str = False,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 60,
        timeout: float | timedelta | None = None,
        min_completed_ratio: float | str = 0.0,
        max_requests_per_second: float = 10.0,
        reupload_unanswered: bool = False,
        result_path: Any = None,
        fuse_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.application_id = application_id
        self.deployment_id = deployment_id
        self.calls = calls
        self.result_path = result_path
        self.start_timestamp = start_timestamp
        self.end_timestamp = end_timestamp
        self.max_attempts = max_attempts
        self.reattempt_wait = reattempt_wait
        self.result_url = result_url
        self.is_pci = is_pci
        self.calling_hours = calling_hours
        self.timezone = timezone
        self.chunk_size = chunk_size
        self.skip_invalid = skip_invalid
        self.allow_duplicates = allow_duplicates
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.min_completed_ratio = min_completed_ratio
        self.max_requests_per_second = max_requests_per_second
        self.reupload_unanswered = reupload_unanswered
        self.fuse_conn_id = fuse_conn_id

    @property
    def hook(self) -> FuseHook:
        from airflow_provider_fuse.hooks.fuse import FuseHook

        return FuseHook(self.fuse_conn_id)

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render as Airflow does, then mask the ``is_pci`` variables of rows given inline (not a file's)."""
        super().render_template_fields(context, jinja_env)
        if isinstance(self.calls, list):
            for row in self.calls:
                if isinstance(row, Mapping):
                    hide_pci_variables(self.is_pci, row.get("variables"))

    def plan(self, hook: FuseHook, ti: Any = None) -> CampaignPlan:
        """Validated rows in chunks, from the rendered fields, ``result_url="airflow"`` resolved for
        the task instance ``ti``; raises FuseValidationError first."""
        from airflow_provider_fuse import campaign
        from airflow_provider_fuse.validation import flag

        options = {name: getattr(self, name) for name in OPTION_FIELDS}
        return campaign.plan_campaign(
            self._rows(),
            {**options, "result_url": result_url_of(self, hook, ti)},
            chunk_size=campaign.chunk_size_setting(self.chunk_size),
            skip_invalid=flag("skip_invalid", self.skip_invalid),
            allow_duplicates=flag("allow_duplicates", self.allow_duplicates),
            default_region=hook.settings.default_region,
            variables_field=hook.settings.variables_field,
            secret=hook.settings.password,  # keys the chunk fingerprints; never logged
            now=datetime.now(timezone.utc),
        )

    def execute(self, context: Context) -> CampaignXCom:
        from airflow_provider_fuse.callbacks import wants_callbacks
        from airflow_provider_fuse.campaign import CampaignResult, ratio_setting
        from airflow_provider_fuse.result_file import check_result_path
        from airflow_provider_fuse.resume import chunk_call_ids

        ratio_setting(self.min_completed_ratio)  # a bad policy fails now, not after the calls
        check_result_path(self.result_path)  # and so does a result_path that cannot name a file
        hook = self.hook
        check_task_settings(self, hook)
        plan = self.plan(hook, context["ti"])
        self._log_plan(plan)
        if not plan.chunks:
            self.log.warning("The campaign has no rows: no call to place.")
            return CampaignResult(0, ()).to_xcom()
        memory = task_memory(self, hook, context, [chunk.requests[0] for chunk in plan.chunks])
        self._ti = context["ti"]  # where each chunk's ids go as soon as Fuse answers them
        # result_url="airflow": the key of the phone digests published beside each upload's ids
        self._phone_secret = hook.settings.callback_secret if wants_callbacks(self.result_url) else None
        records = self._resume_or_queue(hook, plan, memory)
        chunks = plan.queued_chunks([chunk_call_ids(record) for record in records])
        untracked = [index for index, queued in enumerate(chunks) if queued.call_ids is None]
        if untracked:
            self.log.warning(
                "Fuse queued %s call(s) without answering their ids: they are NOT tracked (no status "
                "requests) and are listed as 'untracked' in the result.",
                f"{sum(len(chunks[index].rows) for index in untracked):,}",
            )
        call_ids = [call_id for queued in chunks for call_id in queued.call_ids or ()]
        # Calls queued without ids can still end by callback (matched by number): wait for those too.
        if not self.wait_for_completion or not (call_ids or (untracked and self._phone_secret)):
            return self._report(context, plan.result_queued(chunks))
        queued = plan.queued(untracked)
        context["ti"].xcom_push(key=QUEUED_XCOM_KEY, value=queued)
        firsts = [chunk.requests[0] for chunk in plan.chunks]
        self._give_up_unknown = give_up_unknown_at(firsts)
        self._callbacks_until = callbacks_until_of(self, firsts)
        event = self._wait(hook, records, call_ids)
        return self._conclude(context, event, queued, chunks)

    def _wait(self, hook: FuseHook, records: Sequence[ChunkRecord], call_ids: list[str]) -> CallsTriggerEvent:
        """Track every call, from the triggerer or from here; calls starting later are polled later."""
        from airflow_provider_fuse import waiting

        poll_interval, timeout = wait_settings(self, hook)
        deadline = waiting.deadline_after(timeout)
        now = time.time()
        later = [
            (index, float(r["start"])) for index, r in enumerate(records) if r["start"] and r["start"] > now
        ]
        if self.deferrable:
            from airflow_provider_fuse.triggers.fuse import FuseCallsTrigger

            self.defer(
                trigger=FuseCallsTrigger(
                    fuse_conn_id=self.fuse_conn_id,
                    poll_interval=poll_interval,
                    deadline=deadline,
                    max_requests_per_second=self.max_requests_per_second,
                    give_up_unknown=getattr(self, "_give_up_unknown", None),
                    call_ids_in_xcom=self._calls_in_xcom(records, call_ids, later),
                    callbacks_until=getattr(self, "_callbacks_until", None),
                ),
                method_name="execute_complete",
            )
        return waiting.wait_for_calls_in_worker(
            self,
            hook,
            call_ids,
            poll_interval,
            deadline,
            [(start, records[index]["call_ids"]) for index, start in later],
            self.max_requests_per_second,
            give_up_unknown=getattr(self, "_give_up_unknown", None),
        )

    def _calls_in_xcom(
        self, records: Sequence[ChunkRecord], call_ids: list[str], later: list[tuple[int, float]]
    ) -> CallsInXCom:
        """Where the trigger reads the ids: this task instance's chunk XComs, all pushed by now."""
        from airflow_provider_fuse.campaign import ids_digest, pack_ids

        starts: dict[float, list[int]] = {}
        for index, start in later:
            starts.setdefault(start, []).append(index)
        return {
            **ti_coordinates(self._ti),  # type: ignore[typeddict-item]
            "key": CHUNK_XCOM_KEY,
            "chunks": len(records),
            "calls": len(call_ids),
            "digest": ids_digest(call_ids),
            "starts": [[start, pack_ids(indexes)] for start, indexes in starts.items()],
        }

    def execute_complete(self, context: Context, event: dict[str, Any]) -> CampaignXCom:
        """Back from the triggerer: conclude as the worker's wait does, with what XCom kept of the uploads."""
        ti = context["ti"]
        queued = ti.xcom_pull(key=QUEUED_XCOM_KEY) or {}
        return self._conclude(context, event, queued, self._chunks_in_xcom(ti, queued))

    @staticmethod
    def _chunks_in_xcom(ti: Any, queued: Mapping[str, Any]) -> list[QueuedChunk] | None:
        """The uploads as pushed before deferring; None for a task deferred by release 0.1.0."""
        from airflow_provider_fuse.campaign import QueuedChunk
        from airflow_provider_fuse.exceptions import FuseError

        if "chunks" not in queued:
            return None
        untracked = set(queued.get("untracked_chunks") or ())
        chunks = []
        for index in range(int(queued["chunks"])):
            calls = ti.xcom_pull(key=CHUNK_CALLS_XCOM_KEY.format(index=index))
            if calls is None:
                raise FuseError(
                    f"XCom {CHUNK_CALLS_XCOM_KEY.format(index=index)!r} is missing: the rows of upload "
                    f"{index + 1} cannot be matched with their outcomes. A retry resumes the calls."
                )
            ids = ti.xcom_pull(key=CHUNK_XCOM_KEY.format(index=index))
            chunks.append(QueuedChunk.from_xcom(ids, calls, index in untracked))
        return chunks

    def _conclude(
        self,
        context: Context,
        event: CallsTriggerEvent | dict[str, Any],
        queued: CampaignQueued | dict[str, Any],
        chunks: Sequence[QueuedChunk] | None,
    ) -> CampaignXCom:
        """Every call ended, or the wait stopped: apply the success policy to the summary."""
        from airflow_provider_fuse.campaign import ratio_setting
        from airflow_provider_fuse.waiting import campaign_outcome

        result, error = campaign_outcome(event, queued, ratio_setting(self.min_completed_ratio), chunks)
        self.log.info(
            "Fuse campaign: %s (%s status requests, %s outcomes by callback).",
            result.describe(),
            f"{event.get('requests', 0):,}",
            f"{event.get('callbacks', 0):,}",
        )
        value = self._report(context, result)
        if error is not None:
            context["ti"].xcom_push(key=RESULT_XCOM_KEY, value=value)
            self.log.error("The campaign's result is in XCom %r.", RESULT_XCOM_KEY)
            raise error
        if not result.reached:
            self.log.warning("No call of the campaign completed.")
        return value

    def _report(self, context: Context, result: CampaignResult) -> CampaignXCom:
        """Every call's outcome to ``result_path``, if set; then the result as XCom holds it: under
        1 MB, so it may list only the calls not reached."""
        if self.result_path is not None:
            from dataclasses import replace

            from airflow_provider_fuse.exceptions import FuseError
            from airflow_provider_fuse.result_file import write_result

            try:
                result = replace(result, result_path=write_result(self.result_path, result.calls))
            except FuseError:
                context["ti"].xcom_push(key=RESULT_XCOM_KEY, value=result.to_xcom())
                raise
            self.log.info("Every call's outcome (%s) is in %s.", f"{result.call_count:,}", result.result_path)
        value = result.to_xcom()
        if value["truncated"]:
            self.log.warning(
                "The result lists %s of the %s calls (those not reached, first by row; XCom stays under "
                "1 MB); totals and completed_ratio count every call. %s",
                f"{len(value['calls']):,}",
                f"{value['calls_count']:,}",
                f"Every call's outcome is in {value['result_path']}."
                if value["result_path"]
                else "Set result_path to write every call's outcome to a CSV file.",
            )
        return value

    # --- reading and logging ---

    def _rows(self) -> list[Any]:
        from airflow_provider_fuse.calls_file import read_rows

        return read_rows(self.calls)

    def _log_plan(self, plan: CampaignPlan) -> None:
        from airflow_provider_fuse.campaign import list_rows

        self.log.info(
            "Fuse campaign: %s valid of %s rows, in %s bulk upload(s).",
            f"{plan.call_count:,}",
            f"{plan.total_rows:,}",
            len(plan.chunks),
        )
        for note in plan.calling_notes():
            self.log.warning("Calling hours: %s", note)
        if plan.skipped:
            self.log.warning(
                "Skipping %s invalid row(s) (skip_invalid=True):\n%s",
                len(plan.skipped),
                list_rows(plan.skipped),
            )

    # --- queueing, each chunk at most once ---

    def _resume_or_queue(self, hook: FuseHook, plan: CampaignPlan, memory: Memory) -> list[ChunkRecord]:
        """Each chunk's record: an earlier try's, or a new upload's."""
        from airflow_provider_fuse import resume, waiting

        records = resume.resume_chunks(
            memory,
            plan.chunks,
            reupload_unanswered=self.reupload_unanswered,
            still_in_progress=lambda ids: waiting.first_in_progress(
                hook, ids, self.max_requests_per_second, self.log
            ),
            log=self.log,
        )
        resume.warn_if_unprotected(self.log, memory)
        for chunk, record in zip(plan.chunks, records, strict=True):
            if record:  # a new try starts with no XCom: the trigger and execute_complete read these
                self._publish(chunk, record)
        return [
            record or self._upload(hook, plan, chunk, memory)
            for chunk, record in zip(plan.chunks, records, strict=True)
        ]

    def _publish(self, chunk: Chunk, record: ChunkRecord) -> None:
        """Push a queued chunk's ids and rows to XCom."""
        from airflow_provider_fuse.campaign import CampaignPlan, pack_ids

        self._ti.xcom_push(key=CHUNK_XCOM_KEY.format(index=chunk.index), value=pack_ids(record["call_ids"]))
        self._ti.xcom_push(
            key=CHUNK_CALLS_XCOM_KEY.format(index=chunk.index), value=CampaignPlan.chunk_calls(chunk)
        )
        secret = getattr(self, "_phone_secret", None)
        if secret:  # result_url="airflow": how a callback naming no call id finds its call
            from airflow_provider_fuse.callback_token import phone_digest
            from airflow_provider_fuse.callbacks import PHONES_KEY

            digests = [phone_digest(row.request.phone_number, secret) for row in chunk.rows]
            rows = pack_ids(row.row for row in chunk.rows)
            self._ti.xcom_push(
                key=PHONES_KEY.format(index=chunk.index), value={"digests": digests, "rows": rows}
            )

    def _upload(self, hook: FuseHook, plan: CampaignPlan, chunk: Chunk, memory: Memory) -> ChunkRecord:
        from airflow_provider_fuse.resume import queue_chunk_once

        def announce(record: ChunkRecord) -> None:  # before the ids are stored: nothing can lose them first
            start, ids = record["start"], record["call_ids"]
            self.log.info(
                "Queued chunk %s of %s: %s calls (%s)%s.",
                chunk.index + 1,
                len(plan.chunks),
                f"{len(chunk.rows):,}",
                f"ids {ids[0]} to {ids[-1]}" if ids else "Fuse answered no call ids: not tracked",
                f", dialing from {datetime.fromtimestamp(start, timezone.utc):%Y-%m-%d %H:%M}Z"
                if start
                else "",
            )
            self._publish(chunk, record)

        return queue_chunk_once(
            memory,
            chunk,
            lambda: hook.queue_calls(self.application_id, self.deployment_id, chunk.requests),
            announce,
        )


class CancelPendingCallsOperator(BaseOperator):
    """Cancel EVERY pending call of a Fuse deployment, not only this DAG's.

    Fuse has no per-call cancel: this is a deliberate, deployment-wide act, never done implicitly.

    :param application_id: Fuse application id.
    :param deployment_id: Fuse deployment id whose pending calls are all cancelled.
    :param fuse_conn_id: Airflow connection of type ``fuse`` (templated).
    """

    template_fields: Sequence[str] = ("application_id", "deployment_id", "fuse_conn_id")
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

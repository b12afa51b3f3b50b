"""Operators that queue Fuse calls, wait for them, and cancel a deployment's pending calls.

Import-light on purpose (DAG files import this module at every parse): the hook, the HTTP clients,
phonenumbers and the trigger load only when a task runs.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.configuration import conf
from airflow.sdk import BaseOperator

from airflow_provider_fuse import DEFAULT_CONN_ID
from airflow_provider_fuse.links import FuseCallLink

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_fuse.campaign import CampaignPlan, Chunk
    from airflow_provider_fuse.exceptions import FuseError
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


def wait_settings(task: Any) -> tuple[float, float | None]:
    """A task's ``poll_interval`` and ``timeout`` in seconds, checked before any request."""
    from airflow_provider_fuse.models import positive_number

    timeout = None if task.timeout is None else positive_number("timeout", task.timeout)
    return positive_number("poll_interval", task.poll_interval), timeout


def check_task_settings(task: Any) -> None:
    """Fail on bad ids, poll interval, timeout or rate before any request (resuming sends one first)."""
    from airflow_provider_fuse.models import path_id, positive_number

    path_id("application_id", task.application_id)
    path_id("deployment_id", task.deployment_id)
    wait_settings(task)
    if hasattr(task, "max_requests_per_second"):
        positive_number("max_requests_per_second", task.max_requests_per_second, "Give a rate above zero.")


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
        check_task_settings(self)
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
                raise unanswered_queue_request(
                    sent_at,
                    f"the call to {request.masked_phone}",
                    "set redial_on_retry=True to queue again regardless.",
                )
            self.log.warning(
                "An earlier try's queue request (%s) went unanswered; redialing as asked.", sent_at
            )
        return self._queue(hook, request, memory)

    def _queue(self, hook: FuseHook, request: CallRequest, memory: TaskMemory) -> str:
        warn_if_unprotected(self, memory)
        call_id = queue_at_most_once(
            memory,
            QUEUE_SENT_KEY,
            CALL_ID_KEY,
            _now_iso(),
            lambda: hook.queue_call(self.application_id, self.deployment_id, request),
        )
        self.log.info("Queued Fuse call %s %s.", call_id, request.describe())
        return call_id

    # --- waiting ---

    def _wait(self, hook: FuseHook, call_id: str) -> dict[str, Any]:
        poll_interval, timeout = wait_settings(self)
        deadline = time.time() + timeout if timeout is not None else None
        if self.deferrable:
            from airflow_provider_fuse.triggers.fuse import TRANSIENT_ERRORS, FuseCallTrigger, outcome

            try:
                details = hook.get_call(call_id, deadline=deadline)
            except TRANSIENT_ERRORS as error:  # the trigger keeps asking, as the worker's wait does
                self.log.warning("Fuse call %s: status not read, will retry: %s", call_id, error)
            else:
                if details.is_terminal:
                    return outcome(details)
            self.defer(
                trigger=FuseCallTrigger(call_id, self.fuse_conn_id, poll_interval, deadline),
                method_name="execute_complete",
            )
        return wait_in_worker(self, hook, call_id, poll_interval, deadline)


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
            details = hook.get_call(call_id, deadline=deadline)
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


# --- campaigns ---------------------------------------------------------------------------------

#: The per-call fields of CALL_FIELDS; the others are campaign settings applied to every row.
ROW_FIELDS = ("phone_number", "caller_id", "post_dial", "variables")
CAMPAIGN_SETTINGS = tuple(name for name in CALL_FIELDS if name not in ROW_FIELDS)
#: Task state store keys of a campaign, per chunk index (renaming them breaks resuming tries).
CHUNK_KEY = "fuse_campaign_chunk_{index}"
CHUNK_SENT_KEY = "fuse_campaign_chunk_{index}_sent"
#: XCom keys: what was queued (pushed before waiting), and the result when the task fails after
#: queueing (on success the result is the return value).
QUEUED_XCOM_KEY = "campaign_queued"
RESULT_XCOM_KEY = "campaign_result"


class QueueCallsOperator(BaseOperator):
    """Queue many calls through Fuse's bulk upload and, by default, wait for all of them at once.

    Every row is validated before anything is sent; bad rows are reported together (row number,
    field, masked value, rule). Valid rows go out in chunks of ``chunk_size`` rows per upload; rows
    whose calling hours give another window (another time zone) go in uploads of their own, since
    Fuse applies one window per upload. Each chunk's call ids are kept in the task state store
    (Airflow 3.3+) before any wait, so a retried task never uploads a chunk twice. One trigger
    (or one loop in the worker) tracks every call.

    The return value is a :class:`~airflow_provider_fuse.campaign.CampaignResult` dict (keys in
    :mod:`airflow_provider_fuse.campaign`); downstream tasks read it with
    ``CampaignResult.from_xcom(value)``. When the task fails after queueing (the success policy,
    the deadline, a Fuse error), the same dict is pushed under the XCom key ``campaign_result``.
    Before waiting, what was queued is pushed under ``campaign_queued`` (call ids and rows packed
    in runs, see ``CampaignPlan.queued``).

    :param application_id: Fuse application id.
    :param deployment_id: Fuse deployment id.
    :param calls: a list of dicts (``phone_number``; optional ``caller_id``, ``post_dial`` and a
        ``variables`` dict), an XComArg returning one, or the absolute path of a CSV file whose header
        names a ``phone_number`` column, optional ``caller_id``/``post_dial`` columns, and variables.
    :param start_timestamp: when dialing may begin (every call): aware datetime, ISO-8601, Unix
        seconds or timedelta.
    :param end_timestamp: when to stop attempting, same forms.
    :param max_attempts: 1 to 10 attempts per call; above 1 needs ``reattempt_wait``.
    :param reattempt_wait: seconds (60 to 86400) or timedelta between attempts.
    :param result_url: https URL Fuse POSTs each call's final details to.
    :param is_pci: run connected calls in Fuse's HIPAA/PCI environment.
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
    :param fuse_conn_id: Airflow connection of type ``fuse``.
    """

    template_fields: Sequence[str] = (
        "application_id",
        "deployment_id",
        "calls",
        *CAMPAIGN_SETTINGS,
        "chunk_size",
        "skip_invalid",
        "allow_duplicates",
        "min_completed_ratio",
    )
    template_fields_renderers = {"calls": "json"}
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
        fuse_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.application_id = application_id
        self.deployment_id = deployment_id
        self.calls = calls
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

    def plan(self, hook: FuseHook) -> CampaignPlan:
        """Validated rows in chunks, from the rendered fields; raises FuseValidationError first."""
        from airflow_provider_fuse import campaign

        return campaign.plan_campaign(
            self._rows(),
            {name: getattr(self, name) for name in CAMPAIGN_SETTINGS},
            chunk_size=campaign.chunk_size_setting(self.chunk_size),
            skip_invalid=campaign.flag_setting("skip_invalid", self.skip_invalid),
            allow_duplicates=campaign.flag_setting("allow_duplicates", self.allow_duplicates),
            default_region=hook.settings.default_region,
            now=datetime.now(timezone.utc),
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_fuse.campaign import CampaignResult, ratio_setting
        from airflow_provider_fuse.resume import TaskMemory

        ratio_setting(self.min_completed_ratio)  # a bad policy fails now, not after the calls
        check_task_settings(self)
        hook = self.hook
        plan = self.plan(hook)
        self._log_plan(plan)
        if not plan.chunks:
            self.log.warning("The campaign has no rows: no call to place.")
            return CampaignResult(0, ()).to_xcom()
        records = self._resume_or_queue(hook, plan, TaskMemory(context))
        calls = plan.calls_in_row_order([record["call_ids"] for record in records])
        if not self.wait_for_completion:
            return plan.result_queued(calls).to_xcom()
        queued = plan.queued(calls)
        context["ti"].xcom_push(key=QUEUED_XCOM_KEY, value=queued)
        return self._wait(context, hook, records, calls, queued)

    def _wait(
        self,
        context: Context,
        hook: FuseHook,
        records: Sequence[dict[str, Any]],
        calls: Sequence[tuple[int, str]],
        queued: dict[str, Any],
    ) -> dict[str, Any]:
        """Track every call, from the triggerer or from here; calls starting later are polled later."""
        poll_interval, timeout = wait_settings(self)
        deadline = time.time() + timeout if timeout is not None else None
        call_ids = [call_id for _, call_id in calls]
        later = [(r["start"], r["call_ids"]) for r in records if r.get("start") and r["start"] > time.time()]
        if self.deferrable:
            from airflow_provider_fuse.triggers.fuse import FuseCallsTrigger

            self.defer(
                trigger=FuseCallsTrigger(
                    call_ids,
                    self.fuse_conn_id,
                    poll_interval,
                    deadline,
                    later or None,
                    max_requests_per_second=self.max_requests_per_second,
                ),
                method_name="execute_complete",
            )
        event = wait_for_calls_in_worker(
            self, hook, call_ids, poll_interval, deadline, later, self.max_requests_per_second
        )
        return self._conclude(context, event, queued)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Back from the triggerer: conclude as the worker's wait does."""
        return self._conclude(context, event, context["ti"].xcom_pull(key=QUEUED_XCOM_KEY) or {})

    def _conclude(self, context: Context, event: dict[str, Any], queued: dict[str, Any]) -> dict[str, Any]:
        """Every call ended, or the wait stopped: apply the success policy to the summary."""
        from airflow_provider_fuse.campaign import CampaignResult, ratio_setting
        from airflow_provider_fuse.exceptions import FuseCallFailed, FuseError, FuseWaitTimeout
        from airflow_provider_fuse.triggers.fuse import DONE, TIMEOUT

        result = CampaignResult.tracked(event.get("calls") or [], queued)
        self.log.info(
            "Fuse campaign: %s (%s status requests).", result.describe(), f"{event.get('requests', 0):,}"
        )
        minimum = ratio_setting(self.min_completed_ratio)
        error: FuseError | None = None
        if event.get("status") == TIMEOUT:
            error = FuseWaitTimeout(f"{event.get('message')} So far {result.describe()}.")
        elif event.get("status") != DONE:
            error = FuseError(str(event.get("message") or "Waiting for the Fuse campaign failed."))
        elif result.completed_ratio < minimum:
            error = FuseCallFailed(
                f"Only {result.describe()}, below min_completed_ratio={minimum:g} "
                f"({math.ceil(minimum * len(result.calls)):,} needed)."
            )
        if error is not None:
            context["ti"].xcom_push(key=RESULT_XCOM_KEY, value=result.to_xcom())
            self.log.error("The campaign's result is in XCom %r.", RESULT_XCOM_KEY)
            raise error
        if not result.reached:
            self.log.warning("No call of the campaign completed.")
        return result.to_xcom()

    # --- reading and logging ---

    def _rows(self) -> list[Any]:
        from airflow_provider_fuse import campaign
        from airflow_provider_fuse.exceptions import FuseValidationError

        calls = self.calls
        if isinstance(calls, os.PathLike) or (isinstance(calls, str) and not calls.lstrip().startswith("[")):
            path = Path(str(calls).strip())
            if not path.is_absolute():
                raise FuseValidationError(
                    "calls",
                    repr(str(calls)[:80]),
                    "Give the CSV file's absolute path, e.g. str(Path(__file__).with_name('calls.csv')): "
                    "a worker's working directory is not the DAG folder.",
                )
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                raise FuseValidationError(
                    "calls", str(path), f"The CSV file cannot be read as UTF-8 text ({err})."
                ) from None
            return campaign.rows_from_csv(text)
        return campaign.rows_from_value(calls)

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

    def _resume_or_queue(
        self, hook: FuseHook, plan: CampaignPlan, memory: TaskMemory
    ) -> list[dict[str, Any]]:
        """Each chunk's record ``{fingerprint, call_ids, start}``: an earlier try's, or a new upload's."""
        records: list[dict[str, Any] | None] = [
            memory.get(CHUNK_KEY.format(index=chunk.index)) for chunk in plan.chunks
        ]
        self._check_earlier_tries(plan, records, memory)
        warn_if_unprotected(self, memory)
        resumed = [record for record in records if record]
        if resumed:
            self.log.info(
                "Resuming: %s of %s chunks (%s calls) were queued by an earlier try and are not uploaded again.",
                len(resumed),
                len(records),
                f"{sum(len(r['call_ids']) for r in resumed):,}",
            )
        return [
            record or self._upload(hook, plan, chunk, memory)
            for chunk, record in zip(plan.chunks, records, strict=True)
        ]

    def _check_earlier_tries(
        self, plan: CampaignPlan, records: Sequence[dict[str, Any] | None], memory: TaskMemory
    ) -> None:
        """Refuse, before any upload, when an earlier try's chunks may not match this try's."""
        count = len(plan.chunks)
        beyond = memory.get(CHUNK_KEY.format(index=count))
        for chunk, record in zip(plan.chunks, records, strict=True):
            sent = None if record else memory.get(CHUNK_SENT_KEY.format(index=chunk.index))
            if (record or sent or {}).get("fingerprint", chunk.fingerprint) != chunk.fingerprint:
                raise _changed_between_tries(chunk.index, count)
            if sent and not self.reupload_unanswered:
                raise unanswered_queue_request(
                    sent.get("at"),
                    f"the {len(chunk.rows):,} calls of chunk {chunk.index + 1} of {count}",
                    "set reupload_unanswered=True to upload that chunk again regardless (it may call "
                    "those people twice). Chunks already queued are never uploaded again.",
                )
            if sent:
                self.log.warning(
                    "Chunk %s's earlier upload went unanswered; uploading it again as asked.", chunk.index + 1
                )
        if beyond:
            raise _changed_between_tries(count, count)

    def _upload(self, hook: FuseHook, plan: CampaignPlan, chunk: Chunk, memory: TaskMemory) -> dict[str, Any]:
        fingerprint, start = chunk.fingerprint, chunk.start

        def send() -> dict[str, Any]:
            call_ids = hook.queue_calls(self.application_id, self.deployment_id, chunk.requests)
            return {"fingerprint": fingerprint, "call_ids": call_ids, "start": start}

        record = queue_at_most_once(
            memory,
            CHUNK_SENT_KEY.format(index=chunk.index),
            CHUNK_KEY.format(index=chunk.index),
            {"fingerprint": fingerprint, "at": _now_iso()},
            send,
        )
        self.log.info(
            "Queued chunk %s of %s: %s calls (ids %s to %s)%s.",
            chunk.index + 1,
            len(plan.chunks),
            f"{len(chunk.rows):,}",
            record["call_ids"][0],
            record["call_ids"][-1],
            f", dialing from {datetime.fromtimestamp(start, timezone.utc):%Y-%m-%d %H:%M}Z" if start else "",
        )
        return record


def _changed_between_tries(index: int, count: int) -> FuseError:
    from airflow_provider_fuse.exceptions import FuseError

    return FuseError(
        f"An earlier try sent chunk {index + 1} with other rows than this try plans ({count} chunk(s)): "
        "the calls or their grouping changed between tries (another CSV, an upstream task run again, "
        "another chunk_size, calling_hours or timezone). Nothing was sent, so that nobody is called twice. "
        f"The earlier calls' ids are in this task instance's state store ({CHUNK_KEY.format(index='N')}); "
        "to start the campaign afresh, delete those keys (Airflow UI or REST API) first."
    )


def wait_for_calls_in_worker(
    task: BaseOperator,
    hook: FuseHook,
    call_ids: Sequence[str],
    poll_interval: float,
    deadline: float | None,
    not_before: Sequence[tuple[float, Sequence[str]]] = (),
    max_requests_per_second: float = 10.0,
) -> dict[str, Any]:
    """Poll many calls in the worker, paced like FuseCallsTrigger; returns the trigger's event."""
    from airflow_provider_fuse.exceptions import FuseError, FuseRateLimitError
    from airflow_provider_fuse.triggers.fuse import CallsPoller, RequestPacer, calls_not_before

    poller = CallsPoller(
        call_ids,
        poll_interval=poll_interval,
        now=time.time(),
        not_before=calls_not_before(not_before),
        log=task.log,
    )
    pacer = RequestPacer(max_requests_per_second, time.monotonic())
    while poller.pending and (deadline is None or time.time() < deadline):
        call_id = poller.next_call(time.time())
        if call_id is None:
            time.sleep(poller.seconds_to_wait(time.time(), deadline) or 0.0)
            continue
        delay = pacer.delay(time.monotonic())
        time.sleep(delay if deadline is None else max(0.0, min(delay, deadline - time.time())))
        if deadline is not None and time.time() >= deadline:
            break
        try:
            details = hook.get_call(call_id, deadline=deadline)
        except FuseError as error:
            if not poller.ride_out(call_id, error, time.time()):
                return poller.event(deadline, error)
            if isinstance(error, FuseRateLimitError):
                pacer.hold(error.retry_after or poll_interval, time.monotonic())
        else:
            poller.record(call_id, details, time.time())
    return poller.event(deadline)


# --- at most once: what QueueCallOperator and QueueCallsOperator share --------------------------

T = TypeVar("T")


def queue_at_most_once(
    memory: TaskMemory, sent_key: str, result_key: str, marker: Any, send: Callable[[], T]
) -> T:
    """Send a queue request Fuse cannot deduplicate, remembering it while its outcome is unknown.

    ``marker`` is stored under ``sent_key`` before sending. It stays when the request may have
    queued calls (a read timeout, a 5xx) so that a retried try refuses to send it again; it is
    dropped when Fuse provably queued nothing, or once the result is stored under ``result_key``.
    """
    from airflow_provider_fuse.exceptions import FuseError

    memory.set(sent_key, marker)
    try:
        result = send()
    except FuseError as error:
        if not error.call_may_be_queued:
            memory.delete(sent_key)
        raise
    memory.set(result_key, result)
    memory.delete(sent_key)
    return result


def unanswered_queue_request(sent_at: Any, what: str, remedy: str) -> FuseError:
    """The refusal of a retried try whose predecessor's queue request went unanswered."""
    from airflow_provider_fuse.exceptions import FuseError

    return FuseError(
        f"An earlier try sent a queue request at {sent_at} and stopped before Fuse answered, so {what} "
        f"may be queued or placed already. Check Fuse (or the callee) first; {remedy}"
    )


def warn_if_unprotected(task: BaseOperator, memory: TaskMemory) -> None:
    from airflow_provider_fuse.resume import NOT_PROTECTED

    if not memory.available:
        task.log.warning(NOT_PROTECTED)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


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

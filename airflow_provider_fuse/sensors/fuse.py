"""FuseCallSensor: wait for a call queued elsewhere (for example with ``wait_for_completion=False``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowSensorTimeout, conf
from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_fuse import DEFAULT_CONN_ID
from airflow_provider_fuse.links import FuseCallLink

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_fuse.hooks.fuse import FuseHook
    from airflow_provider_fuse.models import CallDetailsDict


class FuseCallSensor(BaseSensorOperator):
    """Succeed when a Fuse call completes; fail at once when it is failed, rejected or canceled.

    Works in ``poke`` and ``reschedule`` modes and, with ``deferrable=True``, waits in the triggerer
    (``poke_interval`` between polls, ``timeout`` as the deadline). ``poke_interval`` is at least
    1 second unless Fuse is on loopback. The call details, masked, are the task's XCom return value.

    A wait past ``timeout`` raises ``AirflowSensorTimeout`` in every mode: the task fails without
    retrying, or is skipped with ``soft_fail=True``. The call itself is not cancelled.

    :param call_id: the Fuse call id (templated, e.g. ``"{{ ti.xcom_pull('queue', key='call_id') }}"``).
    :param fuse_conn_id: Airflow connection of type ``fuse`` (templated).
    :param deferrable: wait in the triggerer instead of poking from a worker.
    """

    template_fields: Sequence[str] = ("call_id", "fuse_conn_id")
    ui_color = "#e8f1fb"
    operator_extra_links = (FuseCallLink(),)

    def __init__(
        self,
        *,
        call_id: str,
        fuse_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.call_id = call_id
        self.fuse_conn_id = fuse_conn_id
        self.deferrable = deferrable

    @property
    def hook(self) -> FuseHook:
        from airflow_provider_fuse.hooks.fuse import FuseHook

        return FuseHook(self.fuse_conn_id)

    def poke(self, context: Context) -> PokeReturnValue | bool:
        from airflow_provider_fuse.waiting import outcome

        details = self.hook.get_call(self.call_id)
        self.log.info("Fuse call %s is %r.", self.call_id, details.status)
        if not details.is_terminal:
            return False
        return PokeReturnValue(is_done=True, xcom_value=outcome(details))

    def execute(self, context: Context) -> Any:
        from airflow_provider_fuse.validation import polling_interval

        polling_interval("poke_interval", self.poke_interval, loopback=self.hook.settings.loopback)
        if not self.deferrable:
            return super().execute(context)
        from airflow_provider_fuse.triggers.fuse import FuseCallTrigger
        from airflow_provider_fuse.waiting import deadline_after, ended_before_deferring

        deadline = deadline_after(self.timeout or None)
        ended = ended_before_deferring(self.hook, str(self.call_id), self.log, deadline)
        if ended is not None:
            return ended
        self.defer(
            trigger=FuseCallTrigger(str(self.call_id), self.fuse_conn_id, self.poke_interval, deadline),
            method_name="execute_complete",
            # The triggerer's own backstop: should the trigger never report, Airflow ends the wait at
            # the same deadline (TaskDeferralTimeout, which BaseSensorOperator turns into a sensor timeout).
            timeout=None if deadline is None else timedelta(seconds=max(0.0, deadline - time.time())),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> CallDetailsDict:
        """The trigger's event decides, as a poke would; a timeout is Airflow's sensor timeout.

        Raised here, ``AirflowSensorTimeout`` goes through BaseSensorOperator's ``resume_execution``,
        which skips the task when ``soft_fail`` is set.
        """
        from airflow_provider_fuse.waiting import TIMEOUT, outcome_from_event

        if event.get("status") == TIMEOUT:
            raise AirflowSensorTimeout(event.get("message") or "Waiting for the Fuse call timed out.")
        return outcome_from_event(event)

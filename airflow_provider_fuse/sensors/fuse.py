"""FuseCallSensor: wait for a call queued elsewhere (for example with ``wait_for_completion=False``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.configuration import conf
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

    :param call_id: the Fuse call id (templated, e.g. ``"{{ ti.xcom_pull('queue', key='call_id') }}"``).
    :param fuse_conn_id: Airflow connection of type ``fuse``.
    :param deferrable: wait in the triggerer instead of poking from a worker.
    """

    template_fields: Sequence[str] = ("call_id",)
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
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> CallDetailsDict:
        from airflow_provider_fuse.waiting import outcome_from_event

        return outcome_from_event(event)

"""What the API server does with a verified callback: record it, resume the wait, emit an asset event.

Runs in the API server with a database session (Airflow core imports are fine here, never in a task).
All of one callback happens in one transaction, under a lock on the task instance's row, so a repeated
or concurrent delivery finds the first one's marker and changes nothing.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_fuse import CONN_TYPE
from airflow_provider_fuse.callback_token import (
    CallbackPurpose,
    fingerprint,
    phone_digest,
    read_purpose,
    verify_token,
)
from airflow_provider_fuse.callbacks import (
    CHUNK_SIZE,
    HEAD_KEY,
    CallbackEntry,
    chunk_key,
    deployment_asset_name,
    seen_key,
)
from airflow_provider_fuse.connection import FuseSettings
from airflow_provider_fuse.exceptions import FuseValidationError
from airflow_provider_fuse.models import CallDetails
from airflow_provider_fuse.phone import to_e164
from airflow_provider_fuse.waiting import call_event

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

RECORDED, DUPLICATE = "recorded", "duplicate"
#: One writer at a time in this process: SQLite ignores the row lock, and a worker has one process.
_WRITING = threading.Lock()


@dataclass(frozen=True)
class Verified:
    """A token made with its connection's secret, and what recording its callback needs."""

    purpose: CallbackPurpose
    secret: str
    default_region: str


def verified(token: str) -> Verified | None:
    """The token's purpose and its connection's settings, when the token was made with that secret;
    None for anything else (malformed, forged, altered, unknown or non-Fuse connection, no secret)."""
    claimed = read_purpose(token)
    settings = _connection_settings(claimed.conn_id) if claimed else None
    purpose = verify_token(token, settings.callback_secret) if settings else None
    if purpose is None or settings is None:
        return None
    return Verified(purpose, settings.callback_secret, settings.default_region)


def _connection_settings(conn_id: str) -> FuseSettings | None:
    from airflow.models.connection import Connection

    try:
        conn = Connection.get_connection_from_secrets(conn_id)
        if conn.conn_type != CONN_TYPE:
            return None
        settings = FuseSettings.from_connection(conn)
    except Exception as error:  # AirflowNotFoundException, a bad extra: the same 404 as a forged token
        log.info("Fuse callback for connection %r refused: %s", conn_id, type(error).__name__)
        return None
    return settings if settings.callback_secret else None


class Records(Protocol):
    """One transaction's view of what a callback changes (the database, or a test's fake)."""

    def task_instance(self, purpose: CallbackPurpose) -> Any: ...
    def get(self, purpose: CallbackPurpose, key: str) -> Any: ...
    def set(self, purpose: CallbackPurpose, key: str, value: Any) -> None: ...
    def resume(self, ti: Any, details: CallDetails) -> bool: ...
    def emit_asset_event(self, purpose: CallbackPurpose, ti: Any, details: CallDetails) -> bool: ...


def record(found: Verified, body: Mapping[str, Any]) -> str | None:
    """Record one parsed callback for the token's task instance: RECORDED, DUPLICATE, or None when
    that task instance does not exist (the run was deleted)."""
    purpose = found.purpose
    details = CallDetails.from_api(body)
    digest = fingerprint(body, found.secret)
    with _WRITING, database() as records:
        ti = records.task_instance(purpose)
        if ti is None:
            return None
        if records.get(purpose, seen_key(digest)) is not None:
            log.info("Fuse callback for %s delivered again: nothing changed.", _where(purpose))
            return DUPLICATE
        seq = _append(records, purpose, details, digest, _phone_digest(details, found))
        resumed = records.resume(ti, details)
        emitted = records.emit_asset_event(purpose, ti, details)
        log.info(
            "Fuse callback %d for %s: call %s to %s ended %r%s%s.",
            seq,
            _where(purpose),
            details.call_id or "(no id)",
            details.to_dict()["phone_number"],
            details.status,
            "; the deferred task resumes" if resumed else "",
            f"; asset event on {deployment_asset_name(purpose.application_id, purpose.deployment_id)}"
            if emitted
            else "",
        )
        return RECORDED


def _phone_digest(details: CallDetails, found: Verified) -> str | None:
    """The keyed digest of the callback's number as E.164: read in the connection's default region,
    else as international digits without their ``+`` (Fuse's documented sample: ``'447911123456'``)."""
    number = details.phone_number or ""
    for candidate in (number, "+" + re.sub(r"\D", "", number)):
        try:
            return phone_digest(to_e164(candidate, region=found.default_region), found.secret)
        except FuseValidationError:
            continue
    return None


def _append(
    records: Records, purpose: CallbackPurpose, details: CallDetails, digest: str, phone: str | None
) -> int:
    """Add the masked details as the next entry (layout: :mod:`~airflow_provider_fuse.callbacks`)."""
    head = records.get(purpose, HEAD_KEY)
    seq = int(head.get("count", 0)) if isinstance(head, Mapping) else 0
    entry: CallbackEntry = {
        "seq": seq,
        "received_at": datetime.now(timezone.utc).isoformat(),
        "details": details.to_dict(),
        "phone_digest": phone,
    }
    key = chunk_key(seq // CHUNK_SIZE)
    chunk = records.get(purpose, key) if seq % CHUNK_SIZE else None
    records.set(purpose, key, [*(chunk or ()), entry])
    records.set(purpose, seen_key(digest), {"seq": seq})
    records.set(purpose, HEAD_KEY, {"count": seq + 1})
    return seq


@contextmanager
def database() -> Iterator[Records]:
    """Airflow's metadata database, in one transaction (committed on success)."""
    from airflow.utils.session import create_session

    with create_session() as session:
        yield _Database(session)


class _Database:
    """Records in XCom of the task instance, whose row stays locked until the commit."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def task_instance(self, purpose: CallbackPurpose) -> Any:
        from airflow.models.taskinstance import TaskInstance
        from sqlalchemy import select

        return self.session.scalar(
            select(TaskInstance)
            .where(
                TaskInstance.dag_id == purpose.dag_id,
                TaskInstance.run_id == purpose.run_id,
                TaskInstance.task_id == purpose.task_id,
                TaskInstance.map_index == purpose.map_index,
            )
            .with_for_update()
        )

    def get(self, purpose: CallbackPurpose, key: str) -> Any:
        from airflow.models.xcom import XComModel
        from sqlalchemy import select

        return self.session.scalar(
            select(XComModel.value).where(
                XComModel.dag_id == purpose.dag_id,
                XComModel.run_id == purpose.run_id,
                XComModel.task_id == purpose.task_id,
                XComModel.map_index == purpose.map_index,
                XComModel.key == key,
            )
        )

    def set(self, purpose: CallbackPurpose, key: str, value: Any) -> None:
        """Plain JSON, as the Task SDK's own writes store it and read it back (``XComModel.set`` has no
        ``serialize=False`` before Airflow 3.2, and would store a JSON string in the JSON column)."""
        from airflow.models.dagrun import DagRun
        from airflow.models.xcom import XComModel
        from sqlalchemy import delete, select

        dag_run_id = self.session.scalar(
            select(DagRun.id).where(DagRun.dag_id == purpose.dag_id, DagRun.run_id == purpose.run_id)
        )
        self.session.execute(
            delete(XComModel).where(
                XComModel.dag_id == purpose.dag_id,
                XComModel.run_id == purpose.run_id,
                XComModel.task_id == purpose.task_id,
                XComModel.map_index == purpose.map_index,
                XComModel.key == key,
            )
        )
        self.session.add(
            XComModel(
                dag_run_id=dag_run_id,
                key=key,
                value=value,
                run_id=purpose.run_id,
                task_id=purpose.task_id,
                dag_id=purpose.dag_id,
                map_index=purpose.map_index,
            )
        )
        self.session.flush()

    def resume(self, ti: Any, details: CallDetails) -> bool:
        """Resume a task deferred on this very call with the trigger's own event: no status request.

        Only a single-call wait (``FuseCallTrigger``) whose call the callback names, or does not name
        (ASSUMED: then it is this task instance's call), and only with a terminal status. Everything
        else (campaigns, a task not deferred yet) reads the record instead.
        """
        from airflow.utils.state import TaskInstanceState

        from airflow_provider_fuse.triggers.fuse import FuseCallTrigger

        trigger = ti.trigger
        classpath = f"{FuseCallTrigger.__module__}.{FuseCallTrigger.__qualname__}"
        if not (
            details.is_terminal
            and ti.state == TaskInstanceState.DEFERRED
            and ti.next_method == "execute_complete"
            and trigger is not None
            and trigger.classpath == classpath
        ):
            return False
        call_id = str(trigger.kwargs.get("call_id"))
        if details.call_id not in (None, call_id):
            return False
        try:
            from airflow.models.trigger import handle_event_submit
            from airflow.triggers.base import TriggerEvent
        except ImportError:  # an Airflow without it: the trigger reads the record at its next look
            return False
        event = call_event(
            details.status,
            call_id,
            replace(details, call_id=call_id),
            f"Fuse reported call {call_id} {details.status!r} through its result_url callback.",
        )
        handle_event_submit(TriggerEvent(dict(event)), task_instance=ti, session=self.session)
        return True

    def emit_asset_event(self, purpose: CallbackPurpose, ti: Any, details: CallDetails) -> bool:
        """An event on the deployment's asset, when some DAG declared it (else nobody listens)."""
        from airflow.assets.manager import asset_manager
        from airflow.models.asset import AssetModel
        from sqlalchemy import select

        name = deployment_asset_name(purpose.application_id, purpose.deployment_id)
        asset = self.session.scalar(select(AssetModel).where(AssetModel.name == name, AssetModel.uri == name))
        if asset is None:
            return False
        extra = {"call": details.to_dict(), "fuse_conn_id": purpose.conn_id}
        event = asset_manager.register_asset_change(
            task_instance=ti, asset=asset, extra=extra, session=self.session
        )
        return event is not None


def _where(purpose: CallbackPurpose) -> str:
    index = "" if purpose.map_index < 0 else f"[{purpose.map_index}]"
    return f"{purpose.dag_id}/{purpose.run_id}/{purpose.task_id}{index}"

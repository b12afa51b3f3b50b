"""Result callbacks as the tasks see them: the ``result_url`` Airflow builds, and what arrived.

Fuse POSTs a call's final details to its ``result_url``. With ``result_url="airflow"`` the provider
points it at the Fuse plugin of Airflow's own API server (``{[api] base_url}/fuse/callbacks/{token}``,
see :mod:`~airflow_provider_fuse.callback_token`). The plugin records each callback in XCom of the
task instance the token names (the layout below), resumes a task deferred on that one call, and emits
an asset event on the deployment's asset (:func:`deployment_asset_name`). A trigger or a worker reads
the record with :func:`callback_outcome` (one call) or :func:`callbacks_since` (a campaign) before it
asks Fuse anything. Import-light: Airflow is imported inside the functions that need it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypedDict, cast

from airflow_provider_fuse.callback_token import CallbackPurpose, make_token
from airflow_provider_fuse.exceptions import FuseValidationError
from airflow_provider_fuse.models import CallDetails, CallDetailsDict, CallStatus
from airflow_provider_fuse.plugins import CALLBACKS_PATH
from airflow_provider_fuse.urls import check_url

#: The ``result_url`` value that asks for Airflow's own callback address.
RESULT_URL_AIRFLOW = "airflow"
#: How long after its dialing window ends (its last attempt starts) a call's callback is waited for
#: before the wait asks Fuse about that call: a ring, a conversation and Fuse's delivery fit in it.
#: A callback arriving later still counts; the wait only stops relying on it alone.
CALLBACK_GRACE_SECONDS = 900.0

# The record in XCom of the task instance: a head ``{"count": n}``, the entries in chunks of
# CHUNK_SIZE (entry ``seq`` lives in chunk ``seq // CHUNK_SIZE``), and one small marker per
# callback fingerprint so that a repeated delivery is found with one key lookup.
HEAD_KEY = "fuse_callbacks"
CHUNK_SIZE = 100


#: XCom of a campaign task with ``result_url="airflow"``: per upload, the keyed digests of its rows'
#: numbers (:func:`~airflow_provider_fuse.callback_token.phone_digest`), in upload order, so that a
#: callback naming no call id (Fuse's documented call_details carry none) finds its call or row.
PHONES_KEY = "campaign_chunk_{index}_phone_digests"


def chunk_key(index: int) -> str:
    return f"{HEAD_KEY}_{index}"


def seen_key(fingerprint: str) -> str:
    return f"fuse_callback_seen_{fingerprint}"


class CallbackHead(TypedDict):
    count: int


class CallbackEntry(TypedDict):
    """One callback as recorded: masked details only (``CallDetails.to_dict()``), never the raw body.

    ``phone_digest`` is :func:`~airflow_provider_fuse.callback_token.phone_digest` of the number read
    in the connection's ``default_region`` (None when it is no valid number): compare it with the
    digests of a campaign's rows to match callbacks that name no call id.
    """

    seq: int
    received_at: str
    details: CallDetailsDict
    phone_digest: str | None


def deployment_asset_name(application_id: int | str, deployment_id: int | str) -> str:
    """The asset a deployment's callbacks are events of: ``fuse://<application_id>/<deployment_id>``."""
    return f"fuse://{application_id}/{deployment_id}"


def deployment_asset(application_id: int | str, deployment_id: int | str) -> Any:
    """The ``Asset`` to schedule a DAG on: ``schedule=[deployment_asset(1234, 5678)]``."""
    from airflow.sdk import Asset

    name = deployment_asset_name(application_id, deployment_id)
    return Asset(name=name, uri=name)


# --- the address ----------------------------------------------------------------------------------


def airflow_result_url(
    *,
    conn_id: str,
    application_id: int | str,
    deployment_id: int | str,
    callback_secret: str | None,
    ti: Any,
    base_url: str | None = None,
) -> str:
    """The callback address of ``ti``'s calls: ``[api] base_url`` + ``/fuse/callbacks/`` + token.

    ``base_url`` defaults to Airflow's ``[api] base_url``, which the workers must have (https unless
    loopback). Raises ``FuseValidationError`` naming what is missing before anything is sent.
    """
    if not callback_secret:
        raise FuseValidationError(
            "result_url",
            repr(RESULT_URL_AIRFLOW),
            f"Connection {conn_id!r} has no callback_secret extra, which signs the callback address: "
            "set one (python -c 'import secrets; print(secrets.token_urlsafe(32))') or give an https URL.",
        )
    if base_url is None:
        from airflow.providers.common.compat.sdk import conf

        base_url = conf.get("api", "base_url", fallback=None)
    if not base_url:
        raise FuseValidationError(
            "result_url",
            repr(RESULT_URL_AIRFLOW),
            "Airflow's [api] base_url is not set, so Fuse cannot be told where the API server is: set it "
            "(AIRFLOW__API__BASE_URL=https://airflow.example.com) for the workers and the API server.",
        )
    purpose = CallbackPurpose(
        conn_id=conn_id,
        application_id=str(application_id),
        deployment_id=str(deployment_id),
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        map_index=int(ti.map_index if ti.map_index is not None else -1),
    )
    # The address is checked before the token joins it: an error quotes the URL it refused.
    check_url(f"{base_url.rstrip('/')}{CALLBACKS_PATH}", field="[api] base_url")
    return f"{base_url.rstrip('/')}{CALLBACKS_PATH}{make_token(purpose, callback_secret)}"


def resolve_result_url(
    result_url: str | None,
    *,
    conn_id: str,
    application_id: int | str,
    deployment_id: int | str,
    callback_secret: str | None,
    ti: Any,
) -> str | None:
    """``result_url`` as the user gave it, or Airflow's callback address for ``"airflow"``."""
    if not wants_callbacks(result_url):
        return result_url
    if ti is None:
        raise FuseValidationError(
            "result_url",
            repr(RESULT_URL_AIRFLOW),
            "Only a task's calls can report to Airflow (the callback address names the task instance), "
            "and this one has none (a DAG-level callback or a Deadline Alert): give an https URL or None.",
        )
    url = airflow_result_url(
        conn_id=conn_id,
        application_id=application_id,
        deployment_id=deployment_id,
        callback_secret=callback_secret,
        ti=ti,
    )
    _hide(url.rsplit("/", 1)[1])
    return url


def _hide(token: str) -> None:
    """The token is a credential for the task's outcome: keep it out of the task's logs."""
    from airflow.providers.common.compat.sdk import mask_secret

    mask_secret(token)


def wants_callbacks(result_url: Any) -> bool:
    """Whether ``result_url`` asks for Airflow's callback address (``"airflow"``, any case)."""
    return isinstance(result_url, str) and result_url.strip().lower() == RESULT_URL_AIRFLOW


def callbacks_until(requests: Iterable[Any], now: float) -> float:
    """Until when (Unix time) a wait relies on callbacks alone for these calls: the end of their
    dialing window (``resume.dialing_ends_at``) plus :data:`CALLBACK_GRACE_SECONDS`."""
    from airflow_provider_fuse.resume import dialing_ends_at

    return dialing_ends_at(requests, now) + CALLBACK_GRACE_SECONDS


# --- what arrived (triggerer or worker, through the Task SDK) --------------------------------------


async def callbacks_since(ti: Any, seen: int = 0) -> list[CallbackEntry]:
    """The callbacks recorded for ``ti`` after the first ``seen``, oldest first.

    One XCom read when nothing is new; then one per chunk of ``CHUNK_SIZE`` new entries. ``ti`` is
    anything with ``dag_id``, ``run_id``, ``task_id`` and ``map_index`` (a trigger's
    ``self.task_instance``). Cleared with the rest of XCom when a new try starts.
    """
    head = await _aget(ti, HEAD_KEY)
    count = int(head.get("count", 0)) if isinstance(head, Mapping) else 0
    entries: list[CallbackEntry] = []
    for index in range(seen // CHUNK_SIZE, (count + CHUNK_SIZE - 1) // CHUNK_SIZE if count > seen else 0):
        chunk = await _aget(ti, chunk_key(index))
        entries.extend(
            cast(CallbackEntry, e)
            for e in chunk or ()
            if isinstance(e, Mapping) and seen <= e.get("seq", -1) < count
        )
    return entries


async def callback_outcome(ti: Any, call_id: str | None = None) -> CallDetailsDict | None:
    """The final details of ``ti``'s call as a callback reported them, or None when none arrived.

    A callback naming another call is ignored; one naming no call is taken as ``ti``'s (ASSUMED: the
    token is per task instance, and Fuse's documented call_details carry no id), the latest final one
    first: a non-final callback delivered after the final one does not hide it.
    """
    for entry in reversed(await callbacks_since(ti)):
        details = entry["details"]
        if not CallStatus.is_terminal(str(details.get("status") or "")):
            continue
        if call_id is None or details.get("call_id") in (None, str(call_id)):
            return {**details, "call_id": details.get("call_id") or call_id}
    return None


async def reported_outcome(ti: Any, call_id: str, log: Any) -> CallDetails | None:
    """The call's terminal details as its callback reported them; None when none arrived yet, or
    when the record cannot be read (logged: the wait goes on, and asks Fuse after the grace)."""
    try:
        found = await callback_outcome(ti, call_id)
    except Exception as error:  # the supervisor or the XCom backend failed: not this call's fault
        log.warning("Fuse call %s: the callbacks record could not be read: %s", call_id, error)
        return None
    details = CallDetails.from_dict(found) if found else None
    return details if details is not None and details.is_terminal else None


async def _aget(ti: Any, key: str) -> Any:
    """One XCom value of ``ti`` through the Task SDK (:mod:`~airflow_provider_fuse.task_sdk_xcom`)."""
    from airflow_provider_fuse.task_sdk_xcom import aget_xcom

    return await aget_xcom(
        key, dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=ti.map_index
    )

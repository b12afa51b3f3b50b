"""A campaign's whole outcome table, written as CSV where the user asks (``result_path``).

The task's XCom lists at most ``campaign.MAX_CALLS_IN_RESULT`` calls; this file lists every one:
``row,call_id,phone,status,attempts`` in row order, numbers masked as in the result. ``result_path``
is an absolute local path, a URL (``file://``, ``s3://aws_default@bucket/results.csv``, ``gs://``...:
any scheme Airflow's object storage has a provider for) or an ``ObjectStoragePath``, as a campaign's
``calls`` file is (:mod:`airflow_provider_fuse.calls_file` tells them apart). Rows are written one by
one: the CSV text is never built in memory. A local file is written beside its final name, then
renamed, so that a reader never sees half of it.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from airflow_provider_fuse.calls_file import is_storage_path, local_path, shown_url
from airflow_provider_fuse.campaign import CampaignCall
from airflow_provider_fuse.exceptions import FuseError, FuseValidationError

COLUMNS = ("row", "call_id", "phone", "status", "attempts")
_ALLOWED = (
    "Give the absolute path of a file in an existing directory, a URL such as "
    "s3://aws_default@bucket/results.csv, or an ObjectStoragePath."
)


def shown(value: Any) -> str:
    """``result_path`` as logs and errors show it: without a password."""
    return shown_url(str(value).strip()).strip("'\"")


def check_result_path(value: Any) -> None:
    """Fail on a ``result_path`` that cannot name a file, before any call is placed.

    A local directory must exist; object storage is not reached before writing (it may need a network).
    """
    if value is None:
        return
    if not (isinstance(value, (str, os.PathLike)) or is_storage_path(value)) or not str(value).strip():
        raise FuseValidationError("result_path", f"a {type(value).__name__}", _ALLOWED)
    local = local_path(value)
    if local is None:
        return
    if not local.is_absolute():
        raise FuseValidationError(
            "result_path",
            repr(str(local)[:200]),
            f"It is relative: a worker's working directory is no place. {_ALLOWED}",
        )
    if not local.parent.is_dir():
        raise FuseValidationError(
            "result_path", repr(str(local)[:200]), f"Its directory does not exist. {_ALLOWED}"
        )


def write_result(value: Any, calls: Iterable[CampaignCall]) -> str:
    """Write every call's outcome to ``value`` (see the module docstring); returns the path as shown."""
    local = local_path(value)
    try:
        if local is not None:
            _write_local(local, calls)
        else:
            _write_object(value, calls)
    except Exception as err:  # any file system's or storage backend's error
        raise FuseError(
            f"The campaign's outcome table could not be written to result_path {shown(value)!r} "
            f"({type(err).__name__}: {err}). The calls were placed; the result is in XCom."
        ) from err
    return shown(value)


def _write_local(path: Path, calls: Iterable[CampaignCall]) -> None:
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            _write_rows(handle, calls)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _write_object(value: Any, calls: Iterable[CampaignCall]) -> None:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    target = value if is_storage_path(value) else ObjectStoragePath(str(value).strip())
    with target.open("wb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as handle:
        _write_rows(handle, calls)


def _write_rows(handle: Any, calls: Iterable[CampaignCall]) -> None:
    writer = csv.writer(handle)
    writer.writerow(COLUMNS)
    for call in calls:
        attempts = "" if call.attempts is None else call.attempts
        writer.writerow((call.row, call.call_id or "", call.phone or "", call.status, attempts))

"""A campaign's ``calls``: rows as given, or a CSV file, read without surprises.

``calls`` names a file when it is a path, an ``ObjectStoragePath``, or a string that is not the text
of a list: an absolute local path, or a URL (``file://``, ``s3://``, ``gs://``...: any scheme Airflow's
object storage knows, the connection id as the URL's user, e.g. ``s3://aws_default@bucket/calls.csv``).

Object storage is read through Airflow's ``ObjectStoragePath`` and at most ``MAX_CSV_BYTES`` of it.
A local file (a path, ``file://`` or ``local://``) is read only when it is a regular file of at most ``MAX_CSV_BYTES`` whose content has exactly the size
the file system declares. So devices (``/dev/zero``), FIFOs, sockets and directories are refused
before a byte is read, and so are ``/proc`` and ``/sys`` files (they declare no true size). Symlinks
are followed: a DAG folder synced by git-sync, or a Kubernetes ConfigMap, reaches its files through
links, and a link gives no more than its target's path would; the target must pass the same checks.
No error quotes the file's content: the file may be any file the worker can read.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from airflow_provider_fuse.campaign import rows_from_csv, rows_from_value
from airflow_provider_fuse.exceptions import FuseValidationError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

#: The largest campaign file read (about 500,000 rows); larger campaigns belong in several tasks.
MAX_CSV_BYTES = 50 * 1024 * 1024
_READ_SIZE = 1024 * 1024
_ALLOWED = f"Give the absolute path of a regular CSV file of UTF-8 text, at most {MAX_CSV_BYTES // 2**20} MB."
_ALLOWED_OBJECT = f"Give the URL of a CSV object of UTF-8 text, at most {MAX_CSV_BYTES // 2**20} MB."
#: A URL's scheme, as RFC 3986 spells it; ``file`` and ``local`` name the worker's own disk.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_LOCAL_SCHEMES = ("file", "local")


def read_rows(calls: Any) -> list[Any]:
    """The rows of ``calls``: a list, its JSON or Python text, a CSV file's path or URL, or an
    ``ObjectStoragePath``."""
    if (
        isinstance(calls, os.PathLike)
        or is_storage_path(calls)
        or (isinstance(calls, str) and not calls.lstrip().startswith("["))
    ):
        return rows_from_csv(read_csv_file(calls))
    return rows_from_value(calls)


def read_csv_file(value: str | os.PathLike[str] | ObjectStoragePath) -> str:
    """The text of a campaign CSV file or object, or ``FuseValidationError`` naming where (never the content)."""
    local = local_path(value)
    if local is None:
        return _read_object(value)
    return _read_local(local)


def is_storage_path(value: Any) -> bool:
    """Whether ``value`` is an ObjectStoragePath (shared with ``result_file``, as the next two are)."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    return isinstance(value, ObjectStoragePath)


def local_path(value: Any) -> Path | None:
    """The local path ``value`` names, or None when it names an object in remote storage."""
    if is_storage_path(value):
        return Path(value.path) if value.protocol in _LOCAL_SCHEMES else None
    text = os.fspath(value).strip() if isinstance(value, os.PathLike) else str(value).strip()
    scheme = _SCHEME.match(text)
    if scheme is None:
        return Path(text)
    if scheme[1].lower() not in _LOCAL_SCHEMES:
        return None
    return Path(unquote(urlsplit(text).path))


def shown_url(url: str) -> str:
    """A URL as errors show it: without a password, cut to 200 characters."""
    parts = urlsplit(url)
    if parts.password is not None:
        user = f"{parts.username}@" if parts.username else ""
        host = parts.hostname or ""
        url = parts._replace(netloc=f"{user}{host}{f':{parts.port}' if parts.port else ''}").geturl()
    return repr(url[:200])


def _read_object(value: Any) -> str:
    """An object in remote storage, read through Airflow's ObjectStoragePath, never past the size cap."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    shown = shown_url(str(value).strip())
    try:
        path = value if is_storage_path(value) else ObjectStoragePath(str(value).strip())
        with path.open("rb") as handle:
            data = handle.read(MAX_CSV_BYTES + 1)
    except Exception as err:  # any storage backend's error; its text may quote what it was given
        raise FuseValidationError(
            "calls", shown, f"The object cannot be read ({type(err).__name__}). {_ALLOWED_OBJECT}"
        ) from None
    if len(data) > MAX_CSV_BYTES:
        raise FuseValidationError(
            "calls",
            shown,
            f"The object holds more than {MAX_CSV_BYTES:,} bytes, the limit: split the campaign into "
            "several tasks.",
        )
    return _decoded(data, shown, _ALLOWED_OBJECT)


def _read_local(path: Path) -> str:
    """A file on the worker's disk: a regular file of its declared size, under the cap."""
    shown = repr(str(path)[:200])
    if not path.is_absolute():
        raise FuseValidationError(
            "calls",
            shown,
            "Give the CSV file's absolute path, e.g. str(Path(__file__).with_name('calls.csv')): "
            "a worker's working directory is not the DAG folder.",
        )
    try:
        _check_regular(os.stat(path), shown)  # refuse a device or FIFO without even opening it
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        raise FuseValidationError(
            "calls", shown, f"The file cannot be read ({err.strerror}). {_ALLOWED}"
        ) from None
    try:
        data = _read_declared_size(descriptor, shown)
    finally:
        os.close(descriptor)
    return _decoded(data, shown, _ALLOWED)


def _decoded(data: bytes, shown: str, allowed: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FuseValidationError(
            "calls", shown, f"The file is not UTF-8 text (byte {err.start + 1:,} is not). {allowed}"
        ) from None


def _check_regular(info: os.stat_result, shown: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise FuseValidationError(
            "calls", shown, f"It is not a regular file (a device, FIFO, socket or directory). {_ALLOWED}"
        )
    if info.st_size > MAX_CSV_BYTES:
        raise FuseValidationError(
            "calls",
            shown,
            f"The file holds {info.st_size:,} bytes, above the limit of {MAX_CSV_BYTES:,}: split the "
            "campaign into several tasks.",
        )


def _read_declared_size(descriptor: int, shown: str) -> bytes:
    """Read at most one byte past the declared size: ``/proc`` files declare 0 and yield more."""
    info = os.fstat(descriptor)
    _check_regular(info, shown)  # what was opened, not what the path named a moment before
    chunks: list[bytes] = []
    size = 0
    while chunk := os.read(descriptor, min(_READ_SIZE, info.st_size + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > info.st_size:
            break
    if size != info.st_size:
        raise FuseValidationError(
            "calls",
            shown,
            f"The file does not hold the {info.st_size:,} bytes it declares (a /proc or /sys file, or "
            f"one being written). {_ALLOWED}",
        )
    return b"".join(chunks)

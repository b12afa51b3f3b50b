"""A campaign's ``calls``: rows as given, or a CSV file on the worker's disk, read without surprises.

``calls`` names a file when it is a path, or a string that is not the text of a list. Such a file
is read only when it is a regular file of at most ``MAX_CSV_BYTES`` whose content has exactly the size
the file system declares. So devices (``/dev/zero``), FIFOs, sockets and directories are refused
before a byte is read, and so are ``/proc`` and ``/sys`` files (they declare no true size). Symlinks
are followed: a DAG folder synced by git-sync, or a Kubernetes ConfigMap, reaches its files through
links, and a link gives no more than its target's path would; the target must pass the same checks.
No error quotes the file's content: the file may be any file the worker can read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from airflow_provider_fuse.campaign import rows_from_csv, rows_from_value
from airflow_provider_fuse.exceptions import FuseValidationError

#: The largest campaign file read (about 500,000 rows); larger campaigns belong in several tasks.
MAX_CSV_BYTES = 50 * 1024 * 1024
_READ_SIZE = 1024 * 1024
_ALLOWED = f"Give the absolute path of a regular CSV file of UTF-8 text, at most {MAX_CSV_BYTES // 2**20} MB."


def read_rows(calls: Any) -> list[Any]:
    """The rows of ``calls``: a list, its JSON or Python text, or the absolute path of a CSV file."""
    if isinstance(calls, os.PathLike) or (isinstance(calls, str) and not calls.lstrip().startswith("[")):
        return rows_from_csv(read_csv_file(calls))
    return rows_from_value(calls)


def read_csv_file(value: str | os.PathLike[str]) -> str:
    """The text of a campaign CSV file, or ``FuseValidationError`` naming the path (never the content)."""
    path = Path(os.fspath(value).strip())
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
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FuseValidationError(
            "calls", shown, f"The file is not UTF-8 text (byte {err.start + 1:,} is not). {_ALLOWED}"
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

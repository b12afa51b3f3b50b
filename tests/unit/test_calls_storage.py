"""A campaign's ``calls`` as an ObjectStoragePath or a URL: local ones keep every check of a local file,
remote ones are read through Airflow's object storage and never past the size cap."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import ObjectStoragePath
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_fuse import calls_file
from airflow_provider_fuse.exceptions import FuseValidationError

CSV = "phone_number,name\n+16175550101,Ann\n"
ROWS = [{"phone_number": "+16175550101", "variables": {"name": "Ann"}}]


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "calls.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryFileSystem]:
    """A ``memory://`` scheme in Airflow's object storage: a remote bucket without a network."""
    from airflow.sdk.io import fs as airflow_fs

    memory = MemoryFileSystem()
    schemes = {**airflow_fs._register_filesystems(), "memory": lambda conn_id, options=None: memory}
    monkeypatch.setattr(airflow_fs, "_register_filesystems", lambda: schemes)
    memory.pipe("/bucket/calls.csv", CSV.encode())
    yield memory
    memory.store.clear()


def test_a_file_url_an_object_storage_path_and_a_local_url_name_the_same_local_file(csv_file: Path) -> None:
    sources = [
        csv_file.as_uri(),
        f"  {csv_file.as_uri()} ",
        ObjectStoragePath(csv_file.as_uri()),
        f"local://{csv_file}",
    ]
    assert [calls_file.read_rows(source) for source in sources] == [ROWS] * len(sources)


@pytest.mark.parametrize("as_path", [False, True], ids=["url", "ObjectStoragePath"])
def test_a_local_url_keeps_the_local_checks(
    csv_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_path: bool
) -> None:
    """Regular files only, the declared size, the cap: the same for ``file://`` as for a plain path."""

    def source(path: Path) -> object:
        return ObjectStoragePath(path.as_uri()) if as_path else path.as_uri()

    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(FuseValidationError, match="not a regular file"):
        calls_file.read_csv_file(source(tmp_path / "fifo"))  # type: ignore[arg-type]
    (tmp_path / "link.csv").symlink_to(tmp_path)
    with pytest.raises(FuseValidationError, match="not a regular file"):
        calls_file.read_csv_file(source(tmp_path / "link.csv"))  # type: ignore[arg-type]
    monkeypatch.setattr(calls_file, "MAX_CSV_BYTES", len(CSV) - 1)
    with pytest.raises(FuseValidationError, match="above the limit"):
        calls_file.read_csv_file(source(csv_file))  # type: ignore[arg-type]


@pytest.mark.usefixtures("bucket")
def test_an_object_in_remote_storage_is_read_by_url_or_object_storage_path() -> None:
    assert calls_file.read_rows("memory://bucket/calls.csv") == ROWS
    assert calls_file.read_rows(ObjectStoragePath("memory://bucket/calls.csv")) == ROWS


def test_an_object_above_the_cap_is_refused_having_read_one_byte_past_it(
    bucket: MemoryFileSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(calls_file, "MAX_CSV_BYTES", len(CSV) - 1)
    with pytest.raises(FuseValidationError, match=f"more than {len(CSV) - 1} bytes") as info:
        calls_file.read_rows("memory://bucket/calls.csv")
    assert "+16175550101" not in str(info.value), "no content echoed"


@pytest.mark.usefixtures("bucket")
def test_an_unreadable_object_names_its_url_without_a_password_and_never_its_content() -> None:
    with pytest.raises(FuseValidationError, match="cannot be read") as info:
        calls_file.read_rows("memory://ops:s3cr3t-pw@bucket/missing.csv")
    message = str(info.value)
    assert "memory://ops@bucket/missing.csv" in message and "s3cr3t-pw" not in message
    with pytest.raises(FuseValidationError, match="cannot be read"):
        calls_file.read_rows("nosuchscheme://bucket/calls.csv")

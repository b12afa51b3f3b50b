"""calls_file.py: what a campaign's ``calls`` holds, and a CSV file read only when it is a plain file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_provider_fuse import calls_file
from airflow_provider_fuse.exceptions import FuseValidationError

CSV = "phone_number,name\n+16175550101,Ann\n"


def test_calls_are_a_list_its_text_or_a_csv_path(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text("\ufeff" + CSV, encoding="utf-8")
    expected = [{"phone_number": "+16175550101", "variables": {"name": "Ann"}}]
    assert calls_file.read_rows(str(path)) == calls_file.read_rows(path) == expected
    assert calls_file.read_rows(' [{"phone_number": "+16175550101"}]') == [{"phone_number": "+16175550101"}]


def test_a_symlinked_file_is_read_through_its_link(tmp_path: Path) -> None:
    """git-sync and ConfigMap mounts reach files through links: a link to a plain file is fine."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "calls.csv").write_text(CSV, encoding="utf-8")
    (tmp_path / "current").symlink_to(tmp_path / "data")
    assert calls_file.read_csv_file(tmp_path / "current" / "calls.csv") == CSV


def test_a_relative_path_is_refused_with_the_way_to_write_it() -> None:
    with pytest.raises(FuseValidationError, match="absolute path"):
        calls_file.read_csv_file("calls.csv")


def test_the_size_cap_is_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(CSV, encoding="utf-8")
    monkeypatch.setattr(calls_file, "MAX_CSV_BYTES", len(CSV))
    assert calls_file.read_csv_file(path) == CSV
    monkeypatch.setattr(calls_file, "MAX_CSV_BYTES", len(CSV) - 1)
    with pytest.raises(FuseValidationError, match=f"{len(CSV)} bytes, above the limit of {len(CSV) - 1}"):
        calls_file.read_csv_file(path)


def test_a_file_that_yields_more_than_it_declares_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As /proc files do (they declare 0 bytes): the read stops one byte past the declared size."""
    path = tmp_path / "calls.csv"
    path.write_text(CSV, encoding="utf-8")
    real_fstat = os.fstat
    declared = len(CSV) - 10

    def fstat(descriptor: int) -> os.stat_result:
        info = list(real_fstat(descriptor))
        info[6] = declared  # st_size
        return os.stat_result(info)

    reads: list[int] = []
    real_read = os.read

    def read(descriptor: int, size: int) -> bytes:
        reads.append(size)
        return real_read(descriptor, size)

    monkeypatch.setattr(calls_file.os, "fstat", fstat)
    monkeypatch.setattr(calls_file.os, "read", read)
    with pytest.raises(FuseValidationError, match=f"does not hold the {declared} bytes it declares"):
        calls_file.read_csv_file(path)
    assert sum(reads) <= declared + 1

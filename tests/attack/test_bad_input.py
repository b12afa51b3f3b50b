"""Issue 12, items 8, 9 and 11 (non-HTTP part): careless or hostile input fails cleanly, before any request.

* ``calls=`` names a file on the worker: only a regular file of at most 50 MB whose content has the
  size it declares is read (no device, FIFO, ``/proc`` file or directory), and no error quotes its
  content beyond a row number, a column name and a masked value.
* Polling has a floor (1 s) and a campaign's status requests a ceiling (20/s), unless the
  connection's host is loopback (the simulator).
* Whatever Fuse answers, and whatever ids are packed, ends as a value or a FuseError.

requests-mock records every request (a catch-all matcher): "before any request" means it saw none.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import pytest
import requests_mock as rm
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_fuse.campaign import pack_ids
from airflow_provider_fuse.exceptions import FuseError, FuseValidationError
from airflow_provider_fuse.models import CallDetails
from airflow_provider_fuse.operators.fuse import QueueCallOperator, QueueCallsOperator
from airflow_provider_fuse.sensors.fuse import FuseCallSensor
from tests.conftest import DEVELOPER_KEY, HANG, LOGIN
from tests.support import context, status_body

PASSWD = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
ENVIRON = "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG\x00HOME=/root\x00DB_PASSWORD=hunter2-Secret\x00"
TOKEN = "ghp_16C7e42F292c6912E7710c838347Ae178B4a\n"
SECRETS_IN_FILES = ["root:x", "/bin/bash", "nologin", "wJalrXUtnFEMI", "hunter2", "ghp_16C7e42F"]


def any_request(m: rm.Mocker) -> None:
    m.register_uri(
        rm.ANY, re.compile(".*"), json={"call_id": "1", "call_ids": ["1"], **status_body("completed")}
    )


def refused_campaign(calls: Any, **kwargs: Any) -> FuseValidationError:
    """The error of a campaign task given ``calls``; fails the test if any request was sent."""
    with rm.Mocker() as m:
        any_request(m)
        with pytest.raises(FuseValidationError) as info:
            QueueCallsOperator(task_id="c", application_id=1, deployment_id=2, calls=calls, **kwargs).execute(
                context()
            )
        assert m.call_count == 0
    return info.value


def assert_quotes_no_content(error: Exception) -> None:
    shown = str(error)
    assert not [secret for secret in SECRETS_IN_FILES if secret in shown], shown


# --- item 8: the calls file ------------------------------------------------------------------------


@pytest.mark.parametrize("content", [PASSWD, ENVIRON, TOKEN], ids=["passwd", "environ", "token"])
def test_a_file_that_is_no_campaign_is_refused_without_quoting_it(
    fuse_conn: dict[str, str], tmp_path: Path, content: str
) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(content, encoding="utf-8")
    error = refused_campaign(str(path))
    assert error.field == "calls" and "phone_number" in str(error)
    assert_quotes_no_content(error)


def test_a_symlink_is_followed_to_a_regular_file_only_and_quotes_nothing(
    fuse_conn: dict[str, str], tmp_path: Path
) -> None:
    """Links are followed (git-sync and ConfigMaps use them); their target passes the same checks."""
    (tmp_path / "passwd").write_text(PASSWD, encoding="utf-8")
    (tmp_path / "calls.csv").symlink_to(tmp_path / "passwd")
    assert_quotes_no_content(refused_campaign(str(tmp_path / "calls.csv")))
    (tmp_path / "zero.csv").symlink_to("/dev/zero")
    assert "regular file" in str(refused_campaign(str(tmp_path / "zero.csv")))


def test_a_device_is_refused_before_reading_a_byte(fuse_conn: dict[str, str]) -> None:
    """``/dev/zero`` used to be read until MemoryError (1.4 GB)."""
    assert "regular file" in str(refused_campaign("/dev/zero"))


def test_a_fifo_is_refused_without_blocking(fuse_conn: dict[str, str], tmp_path: Path) -> None:
    fifo = tmp_path / "calls.csv"
    os.mkfifo(fifo)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["error"] = refused_campaign(str(fifo))
        except BaseException as err:  # reported below, in the test's thread
            outcome["failure"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG)
    if thread.is_alive():
        with open(fifo, "w") as writer:  # let the blocked reader go before failing
            writer.write("phone_number\n")
        thread.join(HANG)
        pytest.fail("opening the FIFO blocked the task: a writer decides when (and what) it reads")
    assert "failure" not in outcome, outcome.get("failure")
    assert "regular file" in str(outcome["error"])


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="no /proc")
def test_a_proc_file_is_refused_and_the_environment_never_shown(fuse_conn: dict[str, str]) -> None:
    """``/proc`` files are regular files that declare no size: 1.5 KB of the environment leaked."""
    error = refused_campaign("/proc/self/environ")
    environment = Path("/proc/self/environ").read_bytes().decode(errors="replace").split("\x00")
    assert not [entry for entry in environment if len(entry) > 6 and entry in str(error)]
    assert "declares" in str(error)


def test_a_directory_is_refused(fuse_conn: dict[str, str], tmp_path: Path) -> None:
    assert refused_campaign(str(tmp_path)).field == "calls"


def test_an_oversize_file_is_refused_before_reading_it(fuse_conn: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    with path.open("wb") as sparse:
        sparse.truncate(60 * 2**20)  # 60 MB of holes: nothing is written to disk
    error = refused_campaign(str(path))
    assert "limit" in str(error) and "52,428,800" in str(error)


def test_a_cell_above_the_csv_field_limit_is_a_validation_error(
    fuse_conn: dict[str, str], tmp_path: Path
) -> None:
    """The csv module's own error used to escape as a bare csv.Error."""
    path = tmp_path / "calls.csv"
    path.write_text('phone_number,notes\n+16175550123,"' + "wJalrXUtnFEMI" * 20_000 + '"\n', encoding="utf-8")
    error = refused_campaign(str(path))
    assert "line" in str(error)
    assert_quotes_no_content(error)


def test_a_bad_row_shows_its_number_column_and_a_masked_value_only(
    fuse_conn: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "calls.csv"
    path.write_text("phone_number,card\n4111111111111111,4111111111111111\n", encoding="utf-8")
    error = refused_campaign(str(path))
    assert "row 1" in str(error) and "phone_number" in str(error)
    assert "4111111111111111" not in str(error) and "41111111" not in str(error)


def test_a_file_that_is_not_utf8_is_refused_without_quoting_it(
    fuse_conn: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "calls.csv"
    path.write_bytes(b"phone_number,secret\n+16175550123,hunter2-Secret\xff\xfe\n")
    error = refused_campaign(str(path))
    assert "UTF-8" in str(error)
    assert_quotes_no_content(error)


# --- item 9: a floor on polling, a ceiling on campaign rates ------------------------------------


def loopback_connection(monkeypatch: pytest.MonkeyPatch) -> str:
    """A connection to 127.0.0.1 (the simulator's kind); requests-mock answers for it."""
    url = "http://127.0.0.1:18080/api"
    conn = {"conn_type": "fuse", "host": url, "login": LOGIN, "password": DEVELOPER_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json.dumps(conn))
    return url


@pytest.mark.parametrize(("mode", "deferrable"), [("poke", False), ("reschedule", False), ("poke", True)])
@pytest.mark.parametrize("interval", [0, 0.001, 0.5])
def test_a_sensor_refuses_to_poll_faster_than_once_a_second(
    fuse_conn: dict[str, str], mode: str, deferrable: bool, interval: float
) -> None:
    """``deferrable=True, poke_interval=0`` sent about 1,660 status requests per second."""
    sensor = FuseCallSensor(
        task_id="w", call_id="5", poke_interval=interval, timeout=60, mode=mode, deferrable=deferrable
    )
    with rm.Mocker() as m:
        any_request(m)
        with pytest.raises(FuseValidationError, match="poke_interval"):
            sensor.execute(context())
        assert m.call_count == 0


@pytest.mark.parametrize("interval", [0.001, 0.5])
def test_a_call_task_refuses_to_poll_faster_than_once_a_second(
    fuse_conn: dict[str, str], interval: float
) -> None:
    with rm.Mocker() as m:
        any_request(m)
        with pytest.raises(FuseValidationError, match="poll_interval"):
            QueueCallOperator(
                task_id="q",
                application_id=1,
                deployment_id=2,
                phone_number="+16175550123",
                poll_interval=interval,
            ).execute(context())
        assert m.call_count == 0


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("poll_interval", 0.001),
        ("poll_interval", 0.5),
        ("max_requests_per_second", 1000),
        ("max_requests_per_second", 21),
    ],
)
def test_a_campaign_refuses_to_flood_fuse(fuse_conn: dict[str, str], setting: str, value: float) -> None:
    error = refused_campaign([{"phone_number": "+16175550123"}], **{setting: value})
    assert error.field == setting


def test_the_floor_and_ceiling_hold_at_their_values(fuse_conn: dict[str, str]) -> None:
    rows = [{"phone_number": "+16175550123"}]
    with rm.Mocker() as m:
        any_request(m)
        result = QueueCallsOperator(
            task_id="c",
            application_id=1,
            deployment_id=2,
            calls=rows,
            poll_interval=1,
            max_requests_per_second=20,
        ).execute(context())
    assert result["finished"] and result["totals"] == {"completed": 1}


def test_a_loopback_host_may_poll_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulator answers at once on this machine: the limits protect Fuse, not it."""
    url = loopback_connection(monkeypatch)
    with rm.Mocker() as m:
        m.post(f"{url}/apps/1/2/queue", json={"call_id": "5"})
        m.get(f"{url}/outbound/5", json=status_body("completed"))
        done = QueueCallOperator(
            task_id="q", application_id=1, deployment_id=2, phone_number="+16175550123", poll_interval=0.01
        ).execute(context())
        campaign = QueueCallsOperator(
            task_id="c",
            application_id=1,
            deployment_id=2,
            calls=[{"phone_number": "+16175550123"}],
            poll_interval=0.01,
            max_requests_per_second=1000,
            wait_for_completion=False,
        )
        m.post(f"{url}/apps/1/2/bulk_queue", json={"call_ids": ["6"]})
        queued = campaign.execute(context())
        m.get(f"{url}/outbound/7", json=status_body("queued"))
        sensor = FuseCallSensor(task_id="w", call_id="7", poke_interval=0.01, timeout=60, deferrable=True)
        with pytest.raises(TaskDeferred) as deferred:
            sensor.execute(context())
    assert done["status"] == "completed" and queued["calls"][0][0] == "6"
    assert deferred.value.trigger.poll_interval == 0.01


# --- item 11: every answer ends as a value or a FuseError --------------------------------------

HUGE_INT = 10**5000
HUGE_TEXT = "9" * 5000
UNREADABLE_FIELDS = [
    {"status": HUGE_INT},
    {"status": "queued", "call_id": HUGE_INT},
    {"status": "queued", "phone_number": HUGE_INT},
    {"status": "queued", "attempts": HUGE_INT},
    {"status": "queued", "attempts": HUGE_TEXT},
    {"status": "failed", "max_attempts": float("1e300"), "attempts": 1e300},
    {"status": "queued", "duration": HUGE_TEXT},
    {"status": "queued", "queued_timestamp": HUGE_INT},
    {"status": "queued", "events": [{"event": HUGE_INT, "timestamp": 1800000000}]},
    {"status": "queued", "events": [{"event": "dialing", "timestamp": HUGE_TEXT}]},
    {HUGE_INT: "x", "status": "queued"},
]


@pytest.mark.parametrize("details", UNREADABLE_FIELDS, ids=range(len(UNREADABLE_FIELDS)))
def test_call_details_read_any_answer_as_a_value(details: dict[Any, Any]) -> None:
    """A 5,000-digit number in a status field raised a bare ValueError (Python's digit limit)."""
    for body in ({"call_details": details}, details, {"answer": details, HUGE_INT: 1}):
        try:
            parsed = CallDetails.from_api(body, call_id="7")
        except FuseError:
            continue
        json.dumps(parsed.to_dict())  # small, JSON-able, printable
        assert repr(parsed) and str(parsed.failure())


@pytest.mark.parametrize("ids", [["²"], ["7", "\u0667"], [HUGE_TEXT], ["7", ".."], ["7", "8 9"]])
def test_packing_ids_refuses_what_is_no_call_id(ids: list[str]) -> None:
    """``pack_ids(["²"])`` raised a bare ValueError: "²".isdigit() is True, int("²") fails."""
    with pytest.raises(FuseValidationError, match="call_id"):
        pack_ids(ids)

"""The deadline-alert example end to end: a late DAG run makes the triggerer phone the on-call number.

The example DAG (example_dags/fuse_deadline_alert.py) runs in the multi-process stack with its
deadline cut to seconds and its load stretched past it; the scheduler sees the deadline missed, the
triggerer runs ``FuseCallNotifier`` as the alert's ``AsyncCallback``, and the call reaches the simulator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stack.stack import AirflowStack, SimControl, SimHostProcess, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.timeout(600)]

EXAMPLE = Path(__file__).resolve().parents[2] / "example_dags" / "fuse_deadline_alert.py"
DAG_ID = "fuse_deadline_alert"
SPEED = 600.0
#: The run is late this many seconds after it was queued; its load lasts far longer.
LATE_AFTER = 5
LOAD_SECONDS = 300


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, SimControl]]:
    home = tmp_path_factory.mktemp("fuse-deadline-stack")
    host = SimHostProcess(["deadline"], home, SPEED)
    try:
        yield home, host.sim("deadline")
    finally:
        host.stop()


@pytest.fixture(scope="module")
def stack(sim: tuple[Path, SimControl]) -> Iterator[AirflowStack]:
    home, control = sim
    env = {
        "AIRFLOW_CONN_FUSE_DEFAULT": control.connection(request_timeout=1, retry_limit=3),
        "FUSE_EXAMPLE_LATE_AFTER": str(LATE_AFTER),
        "FUSE_EXAMPLE_LOAD_SECONDS": str(LOAD_SECONDS),
    }
    airflow = AirflowStack(home, [EXAMPLE], env)
    try:
        airflow.start()
        airflow.wait_for_dags([DAG_ID])
        airflow.unpause(DAG_ID)
        yield airflow
    finally:
        airflow.stop()


def paged_for(control: SimControl, run_id: str) -> list[dict[str, Any]]:
    """The simulator's queue entries whose call names ``run_id``."""
    return [
        entry
        for entry in control.ledger("queue")
        if json.loads(entry["form"].get("call_parameters") or "{}").get("run") == run_id
    ]


def test_a_late_run_makes_the_triggerer_phone_the_on_call_number(
    stack: AirflowStack, sim: tuple[Path, SimControl]
) -> None:
    _, control = sim
    run_id = stack.trigger(DAG_ID)
    (page,) = wait_for("the deadline alert's call", lambda: paged_for(control, run_id) or None, timeout=240)
    assert stack.run_state(DAG_ID, run_id) in ("queued", "running"), "the call came while the run was late"
    assert page["form"]["phone_number"] == "tel:+16175550199;ani=+18009957586"
    assert page["form"]["max_attempts"] == "3"
    variables = json.loads(page["form"]["call_parameters"])
    assert (variables["dag"], variables["run"]) == (DAG_ID, run_id)
    assert variables["deadline"], "the deadline's time is rendered into the call"
    (call_id,) = page["call_ids"]
    # Queued by the triggerer: the notifier's line is in the triggerer's log, and in no other component's.
    queued_line = f"FuseCallNotifier queued Fuse call {call_id}"
    logs = {name: (stack.home / f"{name}.log").read_text(errors="replace") for name in stack.groups}
    wait_for(
        "the triggerer to log the call", lambda: queued_line in (stack.home / "triggerer.log").read_text(), 60
    )
    assert [name for name, text in logs.items() if queued_line in text and name != "triggerer"] == []
    assert "+16175550199" not in (stack.home / "triggerer.log").read_text(), "the number is masked"
    assert len(paged_for(control, run_id)) == 1, "one missed deadline, one call"

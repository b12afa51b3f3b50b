"""A task deferred by release 0.1.0 resumes after an upgrade: its stored trigger rows still load."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from airflow.models.trigger import Trigger

from airflow_provider_fuse.triggers.fuse import FuseCallsTrigger, FuseCallTrigger

#: Trigger rows exactly as release 0.1.0 serialized them (classpath, kwargs).
RELEASE_0_1_0 = [
    (
        "airflow_provider_fuse.triggers.fuse.FuseCallTrigger",
        {"call_id": "7001", "fuse_conn_id": "fuse_default", "poll_interval": 30.0, "deadline": 1800000000.0},
    ),
    (
        "airflow_provider_fuse.triggers.fuse.FuseCallTrigger",
        {"call_id": "7002", "fuse_conn_id": "fuse_prod", "poll_interval": 5.0, "deadline": None},
    ),
    (
        "airflow_provider_fuse.triggers.fuse.FuseCallsTrigger",
        {
            "call_ids": [[5000, 3], "x-9", "5010"],
            "fuse_conn_id": "fuse_default",
            "poll_interval": 60.0,
            "deadline": 1800000000.0,
            "not_before": [[1790000000.0, [[5000, 2]]]],
            "max_concurrency": 10,
            "max_requests_per_second": 10.0,
        },
    ),
    (
        "airflow_provider_fuse.triggers.fuse.FuseCallsTrigger",
        {
            "call_ids": ["1"],
            "fuse_conn_id": "fuse_default",
            "poll_interval": 60.0,
            "deadline": None,
            "not_before": None,
            "max_concurrency": 4,
            "max_requests_per_second": 2.5,
        },
    ),
]


def load(classpath: str, kwargs: dict[str, Any]) -> Any:
    """What the triggerer does with a stored row: Airflow's own kwargs round trip, then the class."""
    stored = Trigger(classpath=classpath, kwargs=kwargs)
    module, _, name = stored.classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**stored.kwargs)


@pytest.mark.parametrize(("classpath", "kwargs"), RELEASE_0_1_0)
def test_a_stored_trigger_of_release_0_1_0_loads_and_serializes_the_same(
    classpath: str, kwargs: dict[str, Any]
) -> None:
    trigger = load(classpath, kwargs)
    assert trigger.serialize() == (classpath, kwargs)


def test_the_loaded_triggers_wait_for_the_calls_they_were_given() -> None:
    single = load(*RELEASE_0_1_0[0])
    assert isinstance(single, FuseCallTrigger)
    assert (single.call_id, single.poll_interval, single.deadline) == ("7001", 30.0, 1800000000.0)
    many = load(*RELEASE_0_1_0[2])
    assert isinstance(many, FuseCallsTrigger)
    assert many.call_ids == ["5000", "5001", "5002", "x-9", "5010"]
    assert many.not_before == [(1790000000.0, ["5000", "5001"])]
    assert single.callbacks_until is None and many.callbacks_until is None  # they poll, as they did


#: Trigger rows of waits whose result_url is Airflow's (issue 16).
WITH_CALLBACKS = [
    (
        "airflow_provider_fuse.triggers.fuse.FuseCallTrigger",
        {
            "call_id": "7003",
            "fuse_conn_id": "fuse_default",
            "poll_interval": 30.0,
            "deadline": None,
            "callbacks_until": 1800000900.0,
            "callbacks_ti": {"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1},
        },
    ),
    (
        "airflow_provider_fuse.triggers.fuse.FuseCallsTrigger",
        {
            "call_ids": ["1"],
            "fuse_conn_id": "fuse_default",
            "poll_interval": 60.0,
            "deadline": None,
            "not_before": None,
            "max_concurrency": 10,
            "max_requests_per_second": 10.0,
            "callbacks_until": 1800000900.0,
        },
    ),
]


@pytest.mark.parametrize(("classpath", "kwargs"), WITH_CALLBACKS)
def test_a_stored_trigger_waiting_on_callbacks_loads_and_serializes_the_same(
    classpath: str, kwargs: dict[str, Any]
) -> None:
    trigger = load(classpath, kwargs)
    assert trigger.callbacks_until == 1800000900.0
    assert trigger.serialize() == (classpath, kwargs)

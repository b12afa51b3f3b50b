"""Each rule has one home: statuses in protocol.py, errors in exceptions.py, records typed."""

from __future__ import annotations

import importlib
import inspect
from typing import get_type_hints

import pytest

from airflow_provider_fuse import campaign, exceptions, models, protocol
from airflow_provider_fuse.models import CallStatus


def test_call_status_is_built_from_the_wire_statuses() -> None:
    assert {status.value for status in CallStatus} == protocol.ACTIVE_STATUSES | protocol.TERMINAL_STATUSES
    assert {s for s in CallStatus if s.is_terminal()} == {CallStatus(s) for s in protocol.TERMINAL_STATUSES}
    assert CallStatus.is_terminal("Completed") and not CallStatus.is_terminal("ringing")


PROVIDER_MODULES = [
    "airflow_provider_fuse." + name
    for name in (
        "calling_hours",
        "calls_file",
        "campaign",
        "hooks.fuse",
        "links",
        "models",
        "notifications.fuse",
        "operators.fuse",
        "phone",
        "protocol",
        "result_file",
        "resume",
        "sensors.fuse",
        "triggers.fuse",
        "validation",
        "waiting",
    )
]


@pytest.mark.parametrize("name", PROVIDER_MODULES)
def test_no_module_but_exceptions_defines_an_error_class(name: str) -> None:
    module = importlib.import_module(name)
    assert not [
        value
        for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, Exception) and value.__module__ == name
    ]


@pytest.mark.parametrize("module", [models, campaign])
def test_models_and_campaign_do_not_hand_out_error_classes(module: object) -> None:
    assert exceptions.FuseInvalidRowsError.__module__ == "airflow_provider_fuse.exceptions"
    assert not [
        name
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, Exception)
    ]


@pytest.mark.parametrize(
    ("record", "produced"),
    [
        (campaign.CampaignQueued, lambda plan: plan.queued([0])),
        (campaign.CampaignXCom, lambda plan: plan.result_queued(plan.queued_chunks([["10"]])).to_xcom()),
    ],
)
def test_campaign_records_have_exactly_the_keys_their_types_declare(record: type, produced: object) -> None:
    from datetime import datetime, timezone

    plan = campaign.plan_campaign(
        [{"phone_number": "+16175550101"}], {}, chunk_size=10, now=datetime(2026, 6, 2, tzinfo=timezone.utc)
    )
    assert set(produced(plan)) == set(get_type_hints(record))  # type: ignore[operator]


#: The import paths README.md shows: they keep working whatever moves inside the package.
PUBLIC = [
    ("airflow_provider_fuse.hooks.fuse", "FuseHook"),
    ("airflow_provider_fuse.models", "CallRequest"),
    ("airflow_provider_fuse.models", "CallDetails"),
    ("airflow_provider_fuse.models", "CallStatus"),
    ("airflow_provider_fuse.operators.fuse", "QueueCallOperator"),
    ("airflow_provider_fuse.operators.fuse", "QueueCallsOperator"),
    ("airflow_provider_fuse.operators.fuse", "CancelPendingCallsOperator"),
    ("airflow_provider_fuse.sensors.fuse", "FuseCallSensor"),
    ("airflow_provider_fuse.triggers.fuse", "FuseCallTrigger"),
    ("airflow_provider_fuse.triggers.fuse", "FuseCallsTrigger"),
    ("airflow_provider_fuse.notifications.fuse", "FuseCallNotifier"),
    ("airflow_provider_fuse.campaign", "CampaignResult"),
    ("airflow_provider_fuse.testing", "FuseSimulator"),
    *[
        ("airflow_provider_fuse.exceptions", name)
        for name in (
            "FuseError",
            "FuseValidationError",
            "FuseInvalidRowsError",
            "FuseConfigurationError",
            "FuseRemoteError",
            "FuseAuthError",
            "FuseNotFoundError",
            "FuseRequestError",
            "FuseRateLimitError",
            "FuseServerError",
            "FuseConnectionError",
            "FuseResponseError",
            "FuseCallFailed",
            "FuseWaitTimeout",
        )
    ],
]


@pytest.mark.parametrize(("module", "name"), PUBLIC)
def test_the_public_import_paths_keep_working(module: str, name: str) -> None:
    assert inspect.isclass(getattr(importlib.import_module(module), name))

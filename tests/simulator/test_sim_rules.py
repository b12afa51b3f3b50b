"""The simulator enforces Fuse's documented rules with Fuse's status codes and error bodies."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_fuse import protocol
from airflow_provider_fuse.testing import FuseSimulator

from .conftest import NUMBER, T0, FuseClient, session

ENCODINGS = ["multipart", "urlencoded"]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(
    "phone_number",
    [
        "6175551234",
        "+16175551234",
        "tel:+16175551234;ani=8009957586;postd=2",
        "TEL:6175551234;postd=1*#wW,",
        "+442071234567;ani=+18009957586",
    ],
)
def test_accepts_fuse_phone_formats(fuse: FuseClient, encoding: str, phone_number: str) -> None:
    answer = fuse.queue(encoding, phone_number=phone_number)
    assert answer.status_code == 200, answer.text
    call = fuse.sim.call(answer.json()["call_id"])
    assert call.spec.phone_number == phone_number
    assert fuse.sim.requests("queue")[-1].form[protocol.PHONE_NUMBER] == phone_number


P = {"phone_number": NUMBER}
BAD_REQUESTS = [
    ({"max_attempts": "1"}, "phone_number is required"),
    ({"phone_number": "   "}, "phone_number is required"),
    ({"phone_number": "call-me"}, "phone_number is not a valid phone number"),
    ({"phone_number": "12"}, "phone_number is not a valid phone number"),
    ({"phone_number": "tel:+16175551234;foo=1"}, "phone_number is not a valid phone number"),
    ({"phone_number": "6175551234;postd=12x"}, "phone_number is not a valid phone number"),
    ({"phone_number": "6175551234;postd=1;ani=8009957586"}, "phone_number is not a valid phone number"),
    ({**P, "start_timestamp": "tomorrow"}, "start_timestamp must be a whole number"),
    ({**P, "end_timestamp": "1700000000.5"}, "end_timestamp must be a whole number"),
    ({**P, "start_timestamp": str(T0 + 100), "end_timestamp": str(T0 + 100)}, "end_timestamp must be after"),
    ({**P, "start_timestamp": str(T0 + 100), "end_timestamp": str(T0 + 50)}, "end_timestamp must be after"),
    ({**P, "max_attempts": "0"}, "max_attempts must be between 1 and 10"),
    ({**P, "max_attempts": "11", "reattempt_wait": "60"}, "max_attempts must be between 1 and 10"),
    ({**P, "max_attempts": "two"}, "max_attempts must be a whole number"),
    ({**P, "max_attempts": "3", "reattempt_wait": "59"}, "reattempt_wait must be between 60 and 86400"),
    ({**P, "max_attempts": "3", "reattempt_wait": "86401"}, "reattempt_wait must be between 60 and 86400"),
    ({**P, "max_attempts": "2"}, "max_attempts greater than 1 requires reattempt_wait"),
    ({**P, "call_parameters": "[1, 2]"}, "call_parameters must be a JSON object"),
    ({**P, "call_parameters": "{name: 'x'}"}, "call_parameters must be a JSON object"),
    ({**P, "is_pci": "2"}, "is_pci must be 0 or 1"),
    ({**P, "is_pci": "yes"}, "is_pci must be 0 or 1"),
    ({**P, "result_url": "ftp://example.com/x"}, "result_url must be an http(s) URL"),
]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(("fields", "message"), BAD_REQUESTS)
def test_rejects_bad_queue_requests(
    fuse: FuseClient, encoding: str, fields: dict[str, str], message: str
) -> None:
    answer = fuse.queue(encoding, **fields)
    assert answer.status_code == 400
    assert message in answer.json()["error"]
    (entry,) = fuse.sim.requests("queue")
    assert (entry.status, entry.processed, entry.call_ids) == (400, False, [])


def test_valid_optional_fields_are_kept(fuse: FuseClient) -> None:
    call_id = fuse.queue_id(
        start_timestamp=T0 + 60,
        end_timestamp=T0 + 7200,
        max_attempts=3,
        reattempt_wait=120,
        call_parameters='{"name": "John Doe", "appointment": "Monday 10am"}',
        result_url="http://127.0.0.1:9/result",
        is_pci=1,
    )
    options = fuse.sim.call(call_id).spec.options
    assert (options.start_timestamp, options.end_timestamp) == (T0 + 60, T0 + 7200)
    assert (options.max_attempts, options.reattempt_wait, options.is_pci) == (3, 120, True)
    assert fuse.sim.call(call_id).spec.variables == {"name": "John Doe", "appointment": "Monday 10am"}


def test_variables_field_name_is_configurable() -> None:
    with FuseSimulator(variables_field="vars") as sim, session() as client:
        fuse = FuseClient(sim, client)
        assert "vars must be a JSON object" in fuse.queue(phone_number=NUMBER, vars="nope").json()["error"]
        call_id = fuse.queue_id(vars='{"pin": "1234"}')
        assert sim.call(call_id).spec.variables == {"pin": "1234"}


def test_json_body_is_refused(fuse: FuseClient) -> None:
    answer = fuse.session.post(fuse.sim.url + protocol.queue_path(1, 2), json={"phone_number": NUMBER})
    assert answer.status_code == 400
    assert "multipart/form-data" in answer.json()["error"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", protocol.queue_path(1, 2)),
        ("POST", protocol.bulk_queue_path(1, 2)),
        ("GET", protocol.status_path(1)),
        ("DELETE", protocol.cancel_path(1, 2)),
    ],
)
@pytest.mark.parametrize("auth", [None, ("dev@example.com", "wrong"), ("other@example.com", "dev-key")])
def test_every_endpoint_checks_basic_auth(
    fuse: FuseClient, method: str, path: str, auth: tuple[str, str] | None
) -> None:
    with requests.Session() as client:
        client.trust_env = False
        answer = client.request(method, fuse.sim.url + path, auth=auth, data={"phone_number": NUMBER})
    assert answer.status_code == 401
    assert "error" in answer.json()
    assert fuse.sim.ledger[-1].processed is False


def test_custom_credentials() -> None:
    with FuseSimulator(login="ops@example.com", password="s3cret:key/+") as sim:
        with session() as client:
            assert client.get(sim.url + protocol.status_path(1)).status_code == 401
        with session("ops@example.com", "s3cret:key/+") as client:
            assert client.get(sim.url + protocol.status_path(1)).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", protocol.queue_path(1, 2), "POST"),
        ("PUT", protocol.bulk_queue_path(1, 2), "POST"),
        ("POST", protocol.status_path(1), "GET"),
        ("POST", protocol.cancel_path(1, 2), "DELETE"),
    ],
)
def test_wrong_method_is_405(fuse: FuseClient, method: str, path: str, allowed: str) -> None:
    answer = fuse.session.request(method, fuse.sim.url + path)
    assert answer.status_code == 405
    assert answer.headers["Allow"] == allowed
    assert "not allowed" in answer.json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/nothing/here", "not found"),
        ("POST", "/apps/1/2/queue/extra", "not found"),
        ("POST", "/apps/one/2/queue", "deployment not found"),
        ("DELETE", "/apps/1/2x/cancel", "deployment not found"),
        ("GET", protocol.status_path(424242), "call not found"),
        ("GET", protocol.status_path(protocol.PROBE_CALL_ID), "call not found"),
    ],
)
def test_unknown_things_are_404(fuse: FuseClient, method: str, path: str, message: str) -> None:
    answer = fuse.session.request(method, fuse.sim.url + path, data={"phone_number": NUMBER})
    assert answer.status_code == 404
    assert answer.json() == {"error": message}
    assert (fuse.sim.ledger[-1].status, fuse.sim.ledger[-1].processed) == (404, False)


def test_path_outside_the_base_is_404(fuse: FuseClient) -> None:
    answer = fuse.session.get(fuse.sim.url.removesuffix("/api") + protocol.status_path(1))
    assert answer.status_code == 404
    assert fuse.sim.ledger[-1].endpoint == "other"


def test_restricted_deployments() -> None:
    with FuseSimulator(deployments={(1, 2)}) as sim, session() as client:
        fuse = FuseClient(sim, client)
        assert fuse.queue(phone_number=NUMBER, app=1, dep=2).status_code == 200
        other = fuse.queue(phone_number=NUMBER, app=1, dep=3)
        assert (other.status_code, other.json()) == (404, {"error": "deployment not found"})
        assert fuse.cancel(7, 2).status_code == 404


def test_deleted_deployment_is_409(fuse: FuseClient) -> None:
    call_id = fuse.queue_id()
    fuse.sim.delete_deployment(1, 2)
    assert fuse.queue(phone_number=NUMBER).status_code == 409
    assert fuse.bulk(f"destination\n{NUMBER}\n").status_code == 409
    canceled = fuse.cancel()
    assert (canceled.status_code, canceled.json()) == (409, {"error": "deployment has been deleted"})
    assert fuse.details(call_id)["status"] == "queued"  # its calls can still be looked up
    assert fuse.queue(phone_number=NUMBER, dep=3).status_code == 200

"""The connection's one home: settings, defaults and bounds (connection.py) and the URL rule (urls.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_fuse import get_provider_info
from airflow_provider_fuse.connection import EXTRAS, FuseSettings, base_url
from airflow_provider_fuse.exceptions import FuseConfigurationError, FuseValidationError
from airflow_provider_fuse.urls import check_call_id, check_url, is_loopback_host


def conn(**fields: Any) -> SimpleNamespace:
    values = {"conn_id": "fuse_default", "host": "https://fuse.test/api", "port": None, "schema": None}
    values |= {"login": "ops@example.com", "password": "dk-SECRET-4242", "extra_dejson": {}}
    return SimpleNamespace(**(values | fields))


def test_defaults_have_one_home() -> None:
    """The hook's defaults and the connection form's are the same values."""
    settings = FuseSettings.from_connection(conn())
    fields = get_provider_info()["connection-types"][0]["conn-fields"]
    for extra in EXTRAS:
        assert getattr(settings, extra.name) == extra.default
        # A secret's field has no default: Airflow's form would show it as "***".
        assert fields[extra.name]["schema"]["default"] == (None if extra.secret else extra.default)
    assert (settings.request_timeout, settings.connect_timeout, settings.retry_limit) == (30, 10, 5)
    assert settings.default_region == "US"


def test_the_form_declares_the_bounds_the_settings_enforce() -> None:
    fields = get_provider_info()["connection-types"][0]["conn-fields"]
    for extra in EXTRAS:
        if isinstance(extra.default, str):
            continue
        schema = fields[extra.name]["schema"]
        assert (schema["minimum"], schema["maximum"]) == (extra.minimum, extra.maximum)
        FuseSettings.from_connection(conn(extra_dejson={extra.name: extra.maximum}))
        with pytest.raises(FuseValidationError, match=extra.name):
            FuseSettings.from_connection(conn(extra_dejson={extra.name: extra.maximum * 2}))


@pytest.mark.parametrize(
    ("extra", "attribute", "expected"),
    [
        ({"request_timeout": "0.5"}, "request_timeout", 0.5),  # URI query arguments arrive as strings
        ({"request_timeout": ""}, "request_timeout", 30.0),
        ({"retry_limit": "3"}, "retry_limit", 3),
        ({"retry_limit": 2.0}, "retry_limit", 2),
        ({"default_region": " gb "}, "default_region", "GB"),
        ({"variables_field": "metadata[]"}, "variables_field", "metadata[]"),
    ],
)
def test_extras_are_read_as_written(extra: dict[str, Any], attribute: str, expected: Any) -> None:
    assert getattr(FuseSettings.from_connection(conn(extra_dejson=extra)), attribute) == expected


def test_a_bad_extra_names_the_connection_and_what_is_allowed() -> None:
    with pytest.raises(FuseValidationError) as info:
        FuseSettings.from_connection(conn(extra_dejson={"request_timeout": "inf"}))
    assert isinstance(info.value, FuseConfigurationError)  # also what callers caught before
    assert "'fuse_default'" in str(info.value) and "from 0.1 to 300" in str(info.value)


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"login": None}, "login"), ({"password": ""}, "password"), ({"login": "a:b@c"}, "login")],
)
def test_login_and_key_are_required_and_usable(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(FuseValidationError) as info:
        FuseSettings.from_connection(conn(**fields))
    assert info.value.field == field and "dk-SECRET" not in str(info.value)


def test_basic_auth_carries_any_unicode_key() -> None:
    """RFC 7617's UTF-8: a key that latin-1 cannot encode still authenticates, in both clients."""
    settings = FuseSettings.from_connection(conn(password="clé-€"))
    assert settings.authorization == "Basic b3BzQGV4YW1wbGUuY29tOmNsw6kt4oKs"
    assert "clé" not in repr(settings)


def test_status_url_checks_the_call_id() -> None:
    settings = FuseSettings.from_connection(conn())
    assert settings.status_url(4242) == "https://fuse.test/api/outbound/4242"
    with pytest.raises(FuseValidationError, match="call_id"):
        settings.status_url("..")


@pytest.mark.parametrize(
    ("host", "port", "schema", "expected"),
    [
        ("http://[::1]", 8765, None, "http://[::1]:8765/api"),
        ("http://127.9.9.9:1/x/", None, None, "http://127.9.9.9:1/x"),
        ("LOCALHOST:8000", None, "v2", "https://localhost:8000/v2"),
        ("HTTPS://Fuse.Example.COM", None, None, "https://fuse.example.com/api"),
    ],
)
def test_base_url_forms(host: str, port: int | None, schema: str | None, expected: str) -> None:
    assert base_url(host, port, schema) == expected


@pytest.mark.parametrize(("host", "port"), [("fuse.test", 70_000), ("fuse.test:0", None)])
def test_base_url_refuses_impossible_ports(host: str, port: int | None) -> None:
    with pytest.raises(FuseValidationError, match=r"port|65535"):
        base_url(host, port)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.255.1.2", True),
        ("::1", True),
        ("[::1]", True),
        ("127.attacker.example", False),
        ("localhost.attacker.example", False),
        ("127.1", False),
        ("::ffff:127.0.0.1", False),
        ("10.0.0.1", False),
        (None, False),
    ],
)
def test_loopback_is_an_ip_literal_or_localhost(host: str | None, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://a@fuse.test/api", "user info"),
        ("https://fuse.test /api", "whitespace"),
        ("https://fuse.test\\api", "backslash"),
        ("https://fuse.test/a/../b", "'..'"),
        ("https://fuse.test/api?x=1", "query"),
        ("ftp://fuse.test/api", "https://"),
        ("http://10.0.0.1/api", "Refusing plain http"),
    ],
)
def test_check_url_says_why(url: str, reason: str) -> None:
    with pytest.raises(FuseValidationError, match=reason.replace("?", r"\?")):
        check_url(url, field="host")


def test_check_url_never_shows_user_info() -> None:
    with pytest.raises(FuseValidationError) as info:
        check_url("https://ops:dk-SECRET-4242@fuse.test/api", field="host")
    assert "dk-SECRET" not in str(info.value) and "***@fuse.test" in str(info.value)


def test_check_url_gives_back_what_is_sent() -> None:
    url = check_url(
        "https://hooks.example.com:8443/cb/run?id=7&tag=a%20b", field="result_url", allow_query=True
    )
    assert str(url) == "https://hooks.example.com:8443/cb/run?id=7&tag=a%20b"
    assert (url.host, url.port, url.path, url.query) == (
        "hooks.example.com",
        8443,
        "/cb/run",
        "id=7&tag=a%20b",
    )


@pytest.mark.parametrize("call_id", ["1", 42, "abc-DEF_9", "x" * 64])
def test_safe_call_ids_pass(call_id: str | int) -> None:
    assert check_call_id(call_id) == str(call_id)


@pytest.mark.parametrize("call_id", [True, None, 1.5, "x" * 65, "a.b", "a/b"])
def test_unsafe_call_ids_are_refused(call_id: Any) -> None:
    with pytest.raises(FuseValidationError, match="call_id"):
        check_call_id(call_id)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8765/cb", "http://[::1]:8765/cb", "http://localhost/cb", "https://h.example/cb?a=1"],
)
def test_loopback_and_https_result_urls_are_kept(url: str) -> None:
    from airflow_provider_fuse.models import CallRequest

    assert CallRequest("+16175550123", result_url=url).result_url == url


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("http://127.0.0.1:8080/api", True),
        ("http://[::1]:8080/api", True),
        ("https://localhost/api", True),
        ("https://fuse.plumvoice.com/api", False),
        ("https://127.0.0.1.nip.io/api", False),
    ],
)
def test_settings_know_whether_fuse_is_on_loopback(host: str, loopback: bool) -> None:
    """The polling floor and the campaign rate ceiling do not apply to a loopback Fuse (the simulator)."""
    settings = FuseSettings(base_url(host), "ops@example.com", "dk")
    assert settings.loopback is loopback


SECRET = "s" * 32


def test_the_callback_secret_is_read_and_never_shown() -> None:
    settings = FuseSettings.from_connection(conn(extra_dejson={"callback_secret": f" {SECRET} "}))
    assert settings.callback_secret == SECRET
    assert SECRET not in repr(settings)
    assert FuseSettings.from_connection(conn()).callback_secret == ""


@pytest.mark.parametrize("value", ["too-short-" + "x" * 10, "has spaces " + "x" * 32, 12345678901234567890])
def test_a_bad_callback_secret_is_refused_without_showing_it(value: Any) -> None:
    with pytest.raises(FuseConfigurationError) as caught:
        FuseSettings.from_connection(conn(extra_dejson={"callback_secret": value}))
    message = str(caught.value)
    assert "callback_secret" in message and "32 to 512 printable characters" in message
    assert str(value)[:10] not in message

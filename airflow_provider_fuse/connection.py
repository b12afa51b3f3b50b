"""The Airflow connection of type ``fuse``: its fields, extras, defaults and bounds, read once and checked.

The hook reads its settings here, ``get_provider_info`` builds the connection form from the same
extras, and the extra link builds the call's URL the way the hook does. A bad field or extra raises
``FuseConnectionSettingError`` naming it before any request. Import-light: no HTTP client, no Airflow.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_fuse import CONN_TYPE, protocol
from airflow_provider_fuse.exceptions import FuseConnectionSettingError
from airflow_provider_fuse.urls import Url, check_call_id, check_url, is_loopback_host

DEFAULT_API_PATH = "/api"
_NUMBER = re.compile(r"\s*[0-9]+(?:\.[0-9]+)?\s*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Extra:
    """One connection extra: its form field, default and the values it accepts."""

    name: str
    label: str
    description: str
    default: float | int | str
    minimum: float = 0.0
    maximum: float = 0.0
    integer: bool = False
    pattern: str = ""
    rule: str = ""
    reserved: frozenset[str] = frozenset()
    upper: bool = False
    choices: tuple[str, ...] = ()
    secret: bool = False  # masked in the form, never shown in an error

    def schema(self) -> dict[str, Any]:
        """The JSON schema of the form field (Airflow's connection form reads it)."""
        if self.secret:  # "format: password" masks the field; a default would come back as "***"
            return {"type": ["string", "null"], "format": "password", "default": None}
        if isinstance(self.default, str):  # choices stay a text box: the description lists them
            return {"type": ["string", "null"], "default": self.default}
        kind = "integer" if self.integer else "number"
        return {
            "type": [kind, "null"],
            "minimum": self.minimum,
            "maximum": self.maximum,
            "default": self.default,
        }

    def allowed(self) -> str:
        if self.secret:
            return f"{self.rule}."
        if isinstance(self.default, str):
            return f"{self.rule} (default {self.default})."
        unit = "a whole number" if self.integer else "seconds"
        return f"{unit} from {self.minimum:g} to {self.maximum:g} (default {self.default:g})."

    def read(self, extra: Mapping[str, Any], conn_id: str) -> Any:
        """The extra's value from the connection, its default when unset, else a named error."""
        value = extra.get(self.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            value = self.default
        good = self._text(value) if isinstance(self.default, str) else self._number(value)
        if good is None:
            shown = f"a value of {len(str(value))} characters" if self.secret else repr(value)[:40]
            raise FuseConnectionSettingError(
                self.name, shown, f"Connection {conn_id!r}: the extra {self.name} takes {self.allowed()}"
            )
        return good

    def _number(self, value: Any) -> float | int | None:
        if isinstance(value, str) and _NUMBER.fullmatch(value):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        if not self.minimum <= value <= self.maximum:
            return None
        if self.integer:
            return int(value) if float(value).is_integer() else None
        return float(value)

    def _text(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return None
        text = value.strip()
        if self.choices:
            return text.lower() if text.lower() in self.choices else None
        if not re.fullmatch(self.pattern, text) or text.lower() in self.reserved:
            return None
        return text.upper() if self.upper else text


REQUEST_TIMEOUT = Extra(
    "request_timeout",
    "Request timeout (s)",
    "The longest one HTTP request to Fuse may take, in seconds: connecting, sending and reading the "
    "whole answer (a wait's deadline shortens it).",
    default=30,
    minimum=0.1,
    maximum=300,
)
CONNECT_TIMEOUT = Extra(
    "connect_timeout",
    "Connect timeout (s)",
    "How long to wait for a connection to Fuse, in seconds.",
    default=10,
    minimum=0.1,
    maximum=60,
)
RETRY_LIMIT = Extra(
    "retry_limit",
    "Retry limit",
    "How many times a safe request is retried on 429, 5xx or network errors.",
    default=5,
    minimum=0,
    maximum=20,
    integer=True,
)
DEFAULT_REGION = Extra(
    "default_region",
    "Default phone region",
    "ISO country code for numbers given without +country code.",
    default="US",
    pattern=r"[A-Za-z]{2}",
    rule="a two-letter ISO 3166 country code such as US or GB",
    upper=True,
)
VARIABLES_FIELD = Extra(
    "variables_field",
    "Variables form field",
    f"Form-field name carrying application variables (assumed: {protocol.DEFAULT_VARIABLES_FIELD}).",
    default=protocol.DEFAULT_VARIABLES_FIELD,
    pattern=r"[A-Za-z_][A-Za-z0-9_.\[\]-]{0,63}",
    rule="a form-field name (letters, digits, '_', '-', '.', '[', ']'; at most 64) that is not one of "
    "the queue request's own fields",
    reserved=protocol.REQUEST_FIELDS,
)
VARIABLES_FORMAT = Extra(
    "variables_format",
    "Variables format",
    "How a single call's variables travel (Fuse does not document it): json = one field holding a JSON "
    "object; fields = each variable its own form field; bracketed = field[name]=value; query = one field "
    f"holding name=value&... (at most {protocol.MAX_QUERY_VARIABLES_CHARS} characters). Campaigns always "
    "send variables as CSV columns. Run fuse-probe --live to check.",
    default=protocol.DEFAULT_VARIABLES_FORMAT,
    rule=f"one of {', '.join(protocol.VARIABLES_FORMATS)}",
    choices=protocol.VARIABLES_FORMATS,
)
#: Fewest characters of a callback secret: 32 printable characters (``secrets.token_urlsafe(32)`` gives 43).
MIN_CALLBACK_SECRET = 32
CALLBACK_SECRET = Extra(
    "callback_secret",
    "Callback secret",
    "The key that signs result_url callback addresses (result_url='airflow'), so that only Fuse can report "
    "a call's outcome to Airflow. Generate one with: python -c 'import secrets; "
    "print(secrets.token_urlsafe(32))'. Changing it invalidates the callbacks of calls still in progress.",
    default="",
    pattern=rf"(?:[!-~]{{{MIN_CALLBACK_SECRET},512}})?",
    rule=f"{MIN_CALLBACK_SECRET} to 512 printable characters without spaces, or nothing (no callbacks)",
    secret=True,
)
EXTRAS = (
    REQUEST_TIMEOUT,
    CONNECT_TIMEOUT,
    RETRY_LIMIT,
    DEFAULT_REGION,
    VARIABLES_FIELD,
    VARIABLES_FORMAT,
    CALLBACK_SECRET,
)


@dataclass(frozen=True)
class FuseSettings:
    """What a hook needs from the Airflow connection, read once and checked."""

    base_url: str
    login: str
    password: str
    request_timeout: float = float(REQUEST_TIMEOUT.default)
    connect_timeout: float = float(CONNECT_TIMEOUT.default)
    retry_limit: int = int(RETRY_LIMIT.default)
    default_region: str = str(DEFAULT_REGION.default)
    variables_field: str = str(VARIABLES_FIELD.default)
    variables_format: str = str(VARIABLES_FORMAT.default)
    #: The key of result_url callback tokens (:mod:`~airflow_provider_fuse.callback_token`); "": unset.
    callback_secret: str = str(CALLBACK_SECRET.default)

    def __repr__(self) -> str:  # the developer key and the callback secret must never reach a log line
        return f"FuseSettings(base_url={self.base_url!r}, login={self.login!r}, password='***')"

    @classmethod
    def from_connection(cls, conn: Any) -> FuseSettings:
        conn_id = str(getattr(conn, "conn_id", None) or "")
        extra = conn.extra_dejson
        if not isinstance(extra, Mapping):
            raise FuseConnectionSettingError(
                "extra", f"a {type(extra).__name__}", f"Connection {conn_id!r}: the extra is a JSON object."
            )
        for name, value in (("login", conn.login), ("password", conn.password)):
            if not isinstance(value, str) or not value or _CONTROL.search(value):
                raise FuseConnectionSettingError(
                    name,
                    "missing" if not value else "unusable",
                    f"Connection {conn_id!r} needs the Fuse login e-mail (login) and developer key "
                    "(password), without control characters.",
                )
        if ":" in conn.login:
            raise FuseConnectionSettingError(
                "login", repr(conn.login[:40]), "A login for HTTP Basic auth cannot hold ':'."
            )
        return cls(
            base_url=base_url(conn.host, conn.port, conn.schema),
            login=conn.login,
            password=conn.password,
            request_timeout=REQUEST_TIMEOUT.read(extra, conn_id),
            connect_timeout=CONNECT_TIMEOUT.read(extra, conn_id),
            retry_limit=RETRY_LIMIT.read(extra, conn_id),
            default_region=DEFAULT_REGION.read(extra, conn_id),
            variables_field=VARIABLES_FIELD.read(extra, conn_id),
            variables_format=VARIABLES_FORMAT.read(extra, conn_id),
            callback_secret=CALLBACK_SECRET.read(extra, conn_id),
        )

    @property
    def authorization(self) -> str:
        """The HTTP Basic ``Authorization`` header (UTF-8, RFC 7617), for both HTTP clients."""
        token = base64.b64encode(f"{self.login}:{self.password}".encode()).decode()
        return f"Basic {token}"

    @property
    def loopback(self) -> bool:
        """Whether Fuse is on this machine (the FuseSimulator): polling limits do not apply to it."""
        return is_loopback_host(check_url(self.base_url, field="host").host)

    def status_url(self, call_id: str | int) -> str:
        """The call's status resource (what the hook polls and the extra link shows)."""
        return self.base_url + status_path(call_id)


def status_path(call_id: str | int) -> str:
    """A call id from anywhere (a template, Fuse's answer) is checked before it becomes a URL path."""
    return protocol.status_path(check_call_id(call_id))


def base_url(host: str | None, port: int | None = None, schema: str | None = None) -> str:
    """The API base URL from a connection's host (a URL or a bare name), port and schema."""
    if not host:
        return protocol.DEFAULT_BASE_URL
    url = check_url(
        host if "://" in host else f"https://{host}", field="host", error=FuseConnectionSettingError
    )
    if port and url.port is None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise FuseConnectionSettingError("port", repr(port)[:20], "A port is a number from 1 to 65535.")
        url = Url(url.scheme, url.host, port, url.path)
    if url.path.strip("/"):
        return str(url).rstrip("/")
    path = "/" + schema.strip("/") if schema and schema.strip("/") else DEFAULT_API_PATH
    full = f"{Url(url.scheme, url.host, url.port, '')}{path}"
    return str(check_url(full, field="schema", error=FuseConnectionSettingError))


def connection_type() -> dict[str, Any]:
    """The ``connection-types`` entry of ``get_provider_info``: the form Airflow's UI shows."""
    return {
        "connection-type": CONN_TYPE,
        "hook-class-name": "airflow_provider_fuse.hooks.fuse.FuseHook",
        "hook-name": "Plum Fuse",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port"],
            "relabeling": {"host": "Base URL", "login": "E-mail", "password": "Developer key"},
            "placeholders": {
                "host": protocol.DEFAULT_BASE_URL,
                "login": "you@example.com",
                "password": "Fuse developer key",
            },
        },
        "conn-fields": {
            extra.name: {"label": extra.label, "description": extra.description, "schema": extra.schema()}
            for extra in EXTRAS
        },
    }

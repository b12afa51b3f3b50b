"""One small hierarchy of errors, so callers can catch ``FuseError`` or a precise case.

Every remote error carries the HTTP status and Fuse's own ``error`` message. No message ever holds
the developer key, and phone numbers in messages are masked by whoever builds the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class FuseError(Exception):
    """Base class of every error this provider raises."""

    #: Whether a queue request that failed this way may still have queued the call. Unknown
    #: failures say yes: a caller then refuses to queue again rather than risk a second call.
    call_may_be_queued: bool = True

    def __init__(self, message: str, *, status_code: int | None = None, fuse_message: str | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.fuse_message = fuse_message


class FuseValidationError(FuseError, ValueError):
    """Bad input caught before any request is sent: names the field, the value and what is allowed."""

    call_may_be_queued = False

    def __init__(self, field: str, value: str, allowed: str):
        super().__init__(f"Invalid {field}: {value}. {allowed}")
        self.field = field


class FuseInvalidRowsError(FuseValidationError):
    """Some campaign rows are invalid; ``errors`` holds every one (``row``, ``field``, ``message``).

    Nothing was sent. ``explanation`` says what to do and lists the rows.
    """

    def __init__(self, errors: Sequence[Any], total: int, explanation: str):
        super().__init__("calls", f"{len(errors):,} of {total:,} rows", explanation)
        self.errors = tuple(errors)


class FuseConfigurationError(FuseError):
    """The Airflow connection cannot be used as configured (for example plain http to a remote host)."""

    call_may_be_queued = False


class FuseRemoteError(FuseError):
    """Fuse answered with an error status; only a 5xx to a queue request may have queued the call."""

    call_may_be_queued = False


class FuseAuthError(FuseRemoteError):
    """401 or 403: credentials rejected, inactive account, or no permission for the resource."""


class FuseNotFoundError(FuseRemoteError):
    """404 or 409: unknown or deleted call, application or deployment."""


class FuseRequestError(FuseRemoteError):
    """400 or 405: Fuse refused the request as malformed."""


class FuseRateLimitError(FuseRemoteError):
    """429: Fuse asks us to slow down; ``retry_after`` holds its Retry-After in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class FuseServerError(FuseRemoteError):
    """5xx: Fuse failed; on a queue request the call may have been queued regardless."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class FuseConnectionError(FuseError):
    """The request failed in transit: refused, unresolvable, timed out or dropped."""

    def __init__(self, message: str, *, reached_fuse: bool):
        super().__init__(message)
        #: False only when the request provably never left this machine (refused, DNS, connect timeout).
        self.reached_fuse = reached_fuse
        self.call_may_be_queued = reached_fuse


class FuseResponseError(FuseError):
    """Fuse answered with a body this provider cannot read (malformed JSON, unexpected shape)."""


class FuseCallFailed(FuseError):
    """The call ended without being completed: failed, rejected or canceled."""

    def __init__(self, message: str, *, call_id: str | None = None, status: str | None = None):
        super().__init__(message)
        self.call_id = call_id
        self.status = status


class FuseWaitTimeout(FuseError):
    """Waiting for a call passed its deadline. The call itself is NOT cancelled."""


class FuseConnectionSettingError(FuseValidationError, FuseConfigurationError):
    """A field or extra of the Airflow connection is unusable: names it, before any request is sent."""

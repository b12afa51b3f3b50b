"""The FastAPI app the API server mounts under ``/fuse``; built once, in the API server only.

The callback token is a credential in the path, and Airflow's access log (like uvicorn's) writes
paths verbatim: :class:`RedactCallbackTokens` replaces it with ``***`` in the request's scope once
the route has read it, before the response starts, so no access log line ever holds it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from fastapi import FastAPI

from airflow_provider_fuse.plugins import CALLBACKS_PATH

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, MutableMapping, Receive, Scope, Send

_TOKEN_IN_PATH = re.compile(re.escape(CALLBACKS_PATH) + r"[^/?]+")
_REDACTED = CALLBACKS_PATH + "***"


def create_app() -> FastAPI:
    from airflow_provider_fuse.plugins import pages
    from airflow_provider_fuse.plugins.routes import router

    app = FastAPI(
        title="Airflow provider for Plum Fuse",
        description="Fuse's result callbacks in; the pages of call and campaign tasks.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(router)
    app.include_router(pages.router)
    app.add_middleware(RedactCallbackTokens)
    return app


def redact_path(path: str) -> str:
    """``path`` with any callback token replaced by ``***``."""
    return _TOKEN_IN_PATH.sub(_REDACTED, path)


class RedactCallbackTokens:
    """Rewrites ``path`` and ``raw_path`` of the shared ASGI scope, which the access loggers read.

    The scope is the one dict every middleware of the API server passes down (Starlette updates it in
    place when it routes into a mount), so the outer access log middleware sees the rewritten path.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_redacted(message: Message) -> None:
            if message["type"] == "http.response.start":  # uvicorn logs access here
                _redact(scope)
            await send(message)

        try:
            await self.app(scope, receive, send_redacted)
        finally:  # Airflow's HttpAccessLogMiddleware logs here, after the app returned
            _redact(scope)


def _redact(scope: MutableMapping[str, object]) -> None:
    path = scope.get("path")
    if isinstance(path, str):
        scope["path"] = redact_path(path)
    raw = scope.get("raw_path")
    if isinstance(raw, bytes):
        scope["raw_path"] = redact_path(raw.decode("latin-1")).encode("latin-1")

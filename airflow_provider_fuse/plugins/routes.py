"""``POST /fuse/callbacks/{token}``: Fuse's result callbacks in.

No Airflow login (Fuse has none): the token is the credential. Every refusal changes nothing:
404 for a token that is malformed, forged, altered, for an unknown connection or task instance (one
answer for all, so it tells a prober nothing); 413 for a body over 64 KB, counted while reading;
415 for a Content-Type a callback never has; 400 for a body that is no call_details.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from airflow_provider_fuse import protocol
from airflow_provider_fuse.plugins import CALLBACKS_ROUTE, inbox

router = APIRouter()


@router.post(CALLBACKS_ROUTE + "/{token}")
async def receive_callback(token: str, request: Request) -> dict[str, str]:
    """Record one callback; a repeated delivery answers 200 ``duplicate`` and changes nothing."""
    found = await run_in_threadpool(inbox.verified, token)
    if found is None:
        raise HTTPException(status_code=404, detail="Not Found")
    body = await _read_capped(request, protocol.MAX_CALLBACK_BYTES)
    content_type = request.headers.get("content-type")
    if protocol.callback_body_kind(content_type, body) is None:
        raise HTTPException(status_code=415, detail="A Fuse callback is JSON or form-encoded.")
    details = protocol.parse_result_callback(body, content_type)
    if details is None:
        raise HTTPException(status_code=400, detail="The body holds no call_details with a status.")
    outcome = await run_in_threadpool(inbox.record, found, details)
    if outcome is None:
        raise HTTPException(status_code=404, detail="Not Found")
    return {"status": outcome}


async def _read_capped(request: Request, limit: int) -> bytes:
    """The body, or 413 as soon as it passes ``limit`` bytes (Content-Length is not trusted)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(status_code=413, detail=f"A Fuse callback is at most {limit:,} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(status_code=413, detail=f"A Fuse callback is at most {limit:,} bytes.")
    return bytes(body)

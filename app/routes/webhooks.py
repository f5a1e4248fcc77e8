"""`/webhooks/lucca/{tenant}`: activation echo and change notifications.

Order matters: the body is read raw and its signature checked before anything is parsed;
the dedupe mark and the enqueue succeed or fail together; 202 only for work that is queued.
"""

from __future__ import annotations

import logging

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from app.metrics import WEBHOOK_EVENTS
from app.routes.common import TENANT_PATTERN, error, resources_of
from app.service.errors import Unavailable
from app.service.notices import accept_notice, webhook_context
from app.signatures import SignatureError, verify

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024


class _TooLarge(Exception):
    pass


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    # isdigit() alone admits "²" and other scripts' digits, which int() then refuses (a 500).
    if declared and declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


MAX_ECHO_LENGTH = 1024
_NOSNIFF = {"X-Content-Type-Options": "nosniff"}


async def activate(request: Request) -> Response:
    value = request.query_params.get("echo") or request.query_params.get("challenge")
    if value is None or len(value) > MAX_ECHO_LENGTH:
        message = f"send echo or challenge, at most {MAX_ECHO_LENGTH} characters"
        return PlainTextResponse(message, status_code=400, headers=_NOSNIFF)
    return PlainTextResponse(value, headers=_NOSNIFF)


async def receive(request: Request) -> Response:
    tenant = request.path_params["tenant"]
    res = resources_of(request)
    if not TENANT_PATTERN.fullmatch(tenant):
        return error(404, "unknown_tenant", "no such tenant")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in {"application/json", "application/cloudevents+json"}:
        return error(415, "unsupported_media_type", "send application/json")
    try:
        body = await _read_body(request)
    except _TooLarge:
        return error(413, "too_large", f"body over {MAX_BODY_BYTES} bytes")
    except ClientDisconnect:
        return error(400, "disconnected", "the body was cut short")
    try:
        tenant_ctx = await webhook_context(res, tenant)
    except Unavailable as exc:
        # Never 404/410 for a tenant that may exist: Lucca would suspend the endpoint.
        return error(503, "unavailable", str(exc))
    if tenant_ctx is None:
        return error(404, "unknown_tenant", "no such tenant")
    try:
        verify(
            tenant_ctx.config.webhook_secrets,
            request.headers.get("lucca-timestamp"),
            request.headers.get("lucca-signature"),
            body,
            now=res.clock(),
        )
    except SignatureError as exc:
        log.info("tenant=%s webhook refused: %s", tenant, exc)
        WEBHOOK_EVENTS.labels(tenant, "bad_signature").inc()
        return error(401, "bad_signature", str(exc))
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        event = None
    if not isinstance(event, dict):
        WEBHOOK_EVENTS.labels(tenant, "bad_json").inc()
        return error(400, "bad_json", "body is not a JSON object")
    try:
        accepted = await accept_notice(res, tenant, event)
    except Unavailable as exc:
        return error(503, "unavailable", str(exc))
    return JSONResponse(accepted.document(), status_code=202)


routes = [
    Route("/webhooks/lucca/{tenant}", activate, methods=["GET"]),
    Route("/webhooks/lucca/{tenant}", receive, methods=["POST"]),
]

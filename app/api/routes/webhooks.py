"""`/webhooks/lucca/{tenant}`: activation echo and change notifications.

Order matters: the tenant is looked up before the body is read; the body is read raw and its
signature checked before anything is parsed; the dedupe mark and the enqueue succeed or fail
together; 202 only for work that is queued (or coalesced, beyond the tenant's ingest rate).
"""

from __future__ import annotations

import logging

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from app.api.auth import resources_of
from app.api.errors import ApiError, ErrorCode
from app.metrics import WEBHOOK_EVENTS
from app.schemas.common import TENANT_RE
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
    if not TENANT_RE.fullmatch(tenant):
        raise ApiError.unknown_tenant()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in {"application/json", "application/cloudevents+json"}:
        raise ApiError.of(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send application/json")
    # The tenant before the body: a body for no tenant is never read. Unavailable (a 503,
    # never a 404 or 410 for a tenant that may exist: Lucca would suspend the endpoint) is
    # answered by the service errors' handler.
    tenant_ctx = await webhook_context(res, tenant)
    if tenant_ctx is None:
        raise ApiError.unknown_tenant()
    try:
        body = await _read_body(request)
    except _TooLarge:
        raise ApiError.of(ErrorCode.TOO_LARGE, f"body over {MAX_BODY_BYTES} bytes") from None
    except ClientDisconnect:
        raise ApiError.of(ErrorCode.DISCONNECTED, "the body was cut short") from None
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
        raise ApiError.of(ErrorCode.BAD_SIGNATURE, str(exc)) from None
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        event = None
    if not isinstance(event, dict):
        WEBHOOK_EVENTS.labels(tenant, "bad_json").inc()
        raise ApiError.bad_json("body is not a JSON object")
    accepted = await accept_notice(res, tenant, event, body)
    return JSONResponse(accepted.document(), status_code=202)


routes = [
    Route("/webhooks/lucca/{tenant}", activate, methods=["GET"]),
    Route("/webhooks/lucca/{tenant}", receive, methods=["POST"]),
]

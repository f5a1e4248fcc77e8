"""`/webhooks/lucca/{tenant}`: activation echo and change notifications.

Order matters: the body is read raw and its signature checked before anything is parsed;
the dedupe mark and the enqueue succeed or fail together; 202 only for work that is queued.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import orjson
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from app.core.events import Notice, NoticeKind, notice_of
from app.metrics import WEBHOOK_EVENTS
from app.resources import Resources
from app.routes.common import TENANT_PATTERN, error, resources_of
from app.signatures import SignatureError, verify
from app.sync import keys
from app.sync.enqueue import enqueue_user_syncs
from app.sync.records import draft_run, utcnow_iso
from app.tenant_store import TenantStoreError

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
        # Cached per process for a few seconds: the hot path reads no config from Redis.
        context = await res.contexts.get(tenant)
    except (RedisError, TenantStoreError):
        # Never 404/410 for a tenant that may exist: Lucca would suspend the endpoint.
        return error(503, "unavailable", "cannot read tenant configuration; retry later")
    if context is None:
        return error(404, "unknown_tenant", "no such tenant")
    try:
        verify(
            context.config.webhook_secrets,
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
    return await _accept(res, tenant, event)


async def _accept(res: Resources, tenant: str, event: dict[str, Any]) -> Response:
    notice = notice_of(event)
    event_id = event.get("id")
    dedupe_key = keys.event(tenant, str(event_id)) if isinstance(event_id, str | int) else None
    if notice.kind is NoticeKind.USERS:
        return await _accept_users(res, tenant, notice, dedupe_key)
    try:
        if dedupe_key is not None:
            fresh = await res.redis.set(
                dedupe_key, b"1", nx=True, ex=res.settings.webhook_dedupe_seconds
            )
            if not fresh:
                WEBHOOK_EVENTS.labels(tenant, "duplicate").inc()
                return JSONResponse({"status": "duplicate"}, status_code=202)
        try:
            run_id = await _queue(res, tenant, notice)
        except BaseException:
            if dedupe_key is not None:  # Lucca's retry must find no mark of a lost event
                await res.redis.delete(dedupe_key)
            raise
        await res.records.note(tenant, last_event=utcnow_iso())
    except RedisError:
        log.warning("tenant=%s webhook not queued: redis unavailable", tenant)
        WEBHOOK_EVENTS.labels(tenant, "unavailable").inc()
        return error(503, "unavailable", "cannot queue the event; retry later")
    WEBHOOK_EVENTS.labels(tenant, notice.kind.value).inc()
    log.info("tenant=%s event=%s topic=%s -> %s", tenant, event_id, notice.topic, notice.kind)
    return JSONResponse(
        {"status": notice.kind.value, "run": run_id, "reason": notice.reason or None},
        status_code=202,
    )


async def _accept_users(
    res: Resources, tenant: str, notice: Notice, dedupe_key: str | None
) -> Response:
    """The hot path: dedupe mark and generations, then the run record with its jobs (two
    round trips to Redis)."""
    run = draft_run(mode="users", trigger=f"webhook:{notice.topic}", expected=len(notice.user_ids))

    def stage(pipe: Pipeline) -> None:
        res.records.stage_run(pipe, tenant, run)
        res.records.stage_note(pipe, tenant, last_event=str(run["created_at"]))

    dedupe = (dedupe_key, res.settings.webhook_dedupe_seconds) if dedupe_key else None
    try:
        queued = await enqueue_user_syncs(
            res.redis, tenant, notice.user_ids, run_id=str(run["id"]), dedupe=dedupe, also=stage
        )
    except RedisError:
        if dedupe_key is not None:  # Lucca's retry must find no mark of a lost event
            with contextlib.suppress(RedisError):
                await res.redis.delete(dedupe_key)
        log.warning("tenant=%s webhook not queued: redis unavailable", tenant)
        WEBHOOK_EVENTS.labels(tenant, "unavailable").inc()
        return error(503, "unavailable", "cannot queue the event; retry later")
    if queued is None:
        WEBHOOK_EVENTS.labels(tenant, "duplicate").inc()
        return JSONResponse({"status": "duplicate"}, status_code=202)
    WEBHOOK_EVENTS.labels(tenant, notice.kind.value).inc()
    return JSONResponse(
        {"status": notice.kind.value, "run": run["id"], "reason": None}, status_code=202
    )


async def _queue(res: Resources, tenant: str, notice: Notice) -> str | None:
    if notice.kind is NoticeKind.DEPARTMENT:
        run_id = await res.records.create_run(
            tenant, mode="department", trigger=f"webhook:{notice.topic}"
        )
        await res.redis.enqueue_job("sync_department", tenant, notice.department_id, run_id)
        return run_id
    if notice.kind is NoticeKind.MALFORMED:
        # The event is unreadable but says something changed: ask Lucca what did.
        run_id = await res.records.create_run(
            tenant,
            mode="changes",
            trigger=f"webhook:malformed:{notice.topic}",
            extra={"reason": notice.reason},
        )
        await res.redis.enqueue_job("poll_changes", tenant, run_id)
        return run_id
    return None


routes = [
    Route("/webhooks/lucca/{tenant}", activate, methods=["GET"]),
    Route("/webhooks/lucca/{tenant}", receive, methods=["POST"]),
]

"""Accepting a Lucca change notice: dedupe it, record its run, queue its work.

The dedupe mark and the enqueue succeed or fail together: a notice that could not be queued
leaves no mark, so Lucca's retry is not taken for a duplicate.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from app.core.events import Notice, NoticeKind, notice_of
from app.metrics import WEBHOOK_EVENTS
from app.service.context import TenantContext
from app.service.errors import Unavailable
from app.service.jobs import (
    enqueue_department,
    enqueue_drain_coalesced,
    enqueue_poll,
    enqueue_user_syncs,
)
from app.service.resources import Resources
from app.store import ingest, keys, queue
from app.store.run_model import RunMode, Trigger, draft_run, utcnow_iso
from app.store.tenants import TenantStoreError

log = logging.getLogger(__name__)

COALESCED = "coalesced"  # the status of an event beyond the ingest rate


@dataclass(frozen=True, slots=True)
class Accepted:
    """What became of a notice: its kind ("users", "ignored", ...), its run, and why."""

    status: str
    run: str | None = None
    reason: str | None = None

    def document(self) -> dict[str, Any]:
        return {"status": self.status, "run": self.run, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Duplicate:
    """The notice was accepted before."""

    def document(self) -> dict[str, Any]:
        return {"status": "duplicate"}


NoticeResult = Accepted | Duplicate


async def webhook_context(res: Resources, tenant: str) -> TenantContext | None:
    """The tenant's context for a webhook; Unavailable when it cannot be read now.

    Cached per process for a few seconds: the hot path reads no config from Redis.
    """
    try:
        return await res.contexts.get(tenant)
    except (RedisError, TenantStoreError) as exc:
        # Never 404/410 for a tenant that may exist: Lucca would suspend the endpoint.
        raise Unavailable("cannot read tenant configuration; retry later") from exc


def _unavailable(tenant: str) -> Unavailable:
    log.warning("tenant=%s webhook not queued: redis unavailable", tenant)
    WEBHOOK_EVENTS.labels(tenant, "unavailable").inc()
    return Unavailable("cannot queue the event; retry later")


def _duplicate(tenant: str) -> Duplicate:
    WEBHOOK_EVENTS.labels(tenant, "duplicate").inc()
    return Duplicate()


# Longer ids are unusable: deduplicated by the body instead (service.md), never stored.
MAX_EVENT_ID_LENGTH = 128


def dedupe_key(tenant: str, event: dict[str, Any], body: bytes) -> str:
    """The event's dedupe mark: (tenant, event id), or the SHA-256 of the raw body when the id
    is missing, not a string or integer, empty or over MAX_EVENT_ID_LENGTH characters (Lucca
    signs each retry with a fresh timestamp over the same body)."""
    event_id = event.get("id")
    text = None
    if isinstance(event_id, str):
        text = event_id
    elif isinstance(event_id, int) and not isinstance(event_id, bool):
        text = str(event_id)
    if text and len(text) <= MAX_EVENT_ID_LENGTH and text.isprintable():
        return keys.event(tenant, text)
    return keys.event_body(tenant, hashlib.sha256(body).hexdigest())


async def accept_notice(
    res: Resources, tenant: str, event: dict[str, Any], body: bytes
) -> NoticeResult:
    """Queue what a verified event asks for; raises Unavailable when Redis cannot take it.

    Beyond the tenant's ingest rate the event is coalesced instead: still a 202, never a 429
    (Lucca suspends an endpoint that keeps failing).
    """
    notice = notice_of(event)
    tenant_ctx = await webhook_context(res, tenant)  # cached: no Redis read on the hot path
    if tenant_ctx is not None and tenant_ctx.disconnecting:
        WEBHOOK_EVENTS.labels(tenant, "ignored").inc()
        return Accepted("ignored", None, "the tenant is disconnecting")
    mark = dedupe_key(tenant, event, body)
    try:
        if await ingest.count_event(res.redis, tenant) > res.settings.webhook_events_per_minute:
            return await _coalesce(res, tenant, notice)
    except RedisError as exc:
        raise _unavailable(tenant) from exc
    if notice.kind is NoticeKind.USERS:
        return await _accept_users(res, tenant, notice, mark)
    try:
        if not await queue.set_mark(res.redis, mark, res.settings.webhook_dedupe_seconds):
            return _duplicate(tenant)
        try:
            run_id = await _queue(res, tenant, notice)
        except BaseException:
            await queue.forget_mark(res.redis, mark)  # Lucca's retry must find no mark
            raise
        await res.records.note(tenant, last_event=utcnow_iso())
    except RedisError as exc:
        raise _unavailable(tenant) from exc
    WEBHOOK_EVENTS.labels(tenant, notice.kind.value).inc()
    log.info("tenant=%s topic=%s -> %s", tenant, notice.topic, notice.kind)
    return Accepted(notice.kind.value, run_id, notice.reason or None)


async def _coalesce(res: Resources, tenant: str, notice: Notice) -> NoticeResult:
    """Record what an event beyond the rate asks for, in sets that grow with employees: no
    dedupe mark (joining a set twice is harmless), no run, no job of its own: the first event
    since the last drain began queues the next one, which syncs them all a few seconds later
    (the minute's tick too, should a drain be lost)."""
    if notice.kind is NoticeKind.USERS:
        await ingest.coalesce_users(res.redis, tenant, notice.user_ids)
    elif notice.kind is NoticeKind.DEPARTMENT and notice.department_id is not None:
        await ingest.coalesce_departments(res.redis, tenant, [notice.department_id])
    elif notice.kind is NoticeKind.MALFORMED:
        await ingest.want_poll(res.redis, tenant)
    else:  # an activation or an ignored topic: nothing to do, nothing to remember
        WEBHOOK_EVENTS.labels(tenant, notice.kind.value).inc()
        return Accepted(notice.kind.value, None, notice.reason or None)
    if await ingest.claim_drain(res.redis, tenant):
        await enqueue_drain_coalesced(res.redis, tenant)
    WEBHOOK_EVENTS.labels(tenant, "coalesced").inc()
    return Accepted(COALESCED, None, notice.reason or None)


async def _accept_users(res: Resources, tenant: str, notice: Notice, mark: str) -> NoticeResult:
    """The hot path: dedupe mark and generations, then the run record with its jobs (two
    round trips to Redis)."""
    run = draft_run(
        mode=RunMode.USERS, trigger=Trigger.webhook(notice.topic), expected=len(notice.user_ids)
    )

    def stage(pipe: Pipeline) -> None:
        res.runs.stage(pipe, tenant, run)
        res.records.stage_note(pipe, tenant, last_event=run.created_at)

    dedupe = (mark, res.settings.webhook_dedupe_seconds)
    try:
        queued = await enqueue_user_syncs(
            res.redis, tenant, notice.user_ids, run_id=run.id, dedupe=dedupe, also=stage
        )
    except RedisError as exc:
        with contextlib.suppress(RedisError):  # Lucca's retry must find no mark of a lost event
            await queue.forget_mark(res.redis, mark)
        raise _unavailable(tenant) from exc
    if queued is None:
        return _duplicate(tenant)
    WEBHOOK_EVENTS.labels(tenant, notice.kind.value).inc()
    return Accepted(notice.kind.value, run.id, None)


async def _queue(res: Resources, tenant: str, notice: Notice) -> str | None:
    if notice.kind is NoticeKind.DEPARTMENT:
        run_id = await res.runs.create(
            tenant, draft_run(mode=RunMode.DEPARTMENT, trigger=Trigger.webhook(notice.topic))
        )
        assert notice.department_id is not None
        await enqueue_department(res.redis, tenant, notice.department_id, run_id)
        return run_id
    if notice.kind is NoticeKind.MALFORMED:
        # The event is unreadable but says something changed: ask Lucca what did.
        new = draft_run(
            mode=RunMode.CHANGES,
            trigger=Trigger.malformed_webhook(notice.topic),
            reason=notice.reason,
        )
        run_id = await res.runs.create(tenant, new)
        await enqueue_poll(res.redis, tenant, run_id)
        return run_id
    return None

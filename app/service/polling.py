"""Pulling changes from Lucca without webhooks: `modifiedAt` since a watermark, and the
periodic triggers (nightly reconciliation, polls) the minute's tick checks."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from app.service.context import TenantContext
from app.service.jobs import enqueue_plan_users, enqueue_user_syncs
from app.service.listing import note_unreadable
from app.service.reconcile_sync import read_listing
from app.service.resources import Resources
from app.service.runs import CHANGES_RUN, FULL_RUN, start_run
from app.store import polling
from app.store.runs import RunState, Trigger, TriggerKind

log = logging.getLogger(__name__)

# Lucca's clock and ours may disagree; re-reading a minute costs nothing (level-triggered).
WATERMARK_OVERLAP = timedelta(minutes=2)
FIRST_POLL_LOOKBACK = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Changes:
    """What a poll read: the users modified since the watermark (minus overlap), each once;
    the items without a usable id (page offset and position -> why); and the new watermark."""

    user_ids: list[str]
    unreadable: dict[str, str]
    started: datetime


async def changed_user_ids(res: Resources, tenant_ctx: TenantContext, run_id: str) -> Changes:
    """What Lucca changed since the watermark (minus overlap). A poll retried after a spent
    budget resumes at its cursor, with the start its first try pinned on the run."""
    now = tenant_ctx.now_local().replace(tzinfo=None)
    pinned = await res.runs.pin(tenant_ctx.tenant, run_id, "poll_started", now.isoformat())
    started = datetime.fromisoformat(pinned)
    stored = await polling.watermark(res.redis, tenant_ctx.tenant)
    since = stored - WATERMARK_OVERLAP if stored else started - FIRST_POLL_LOOKBACK
    ids, unreadable = await read_listing(res, tenant_ctx, run_id, modified_since=since)
    # The watermark is the poll's start, not the newest modifiedAt seen: a change made while
    # the pages were read is newer than the start and is read again by the next poll.
    return Changes(ids, unreadable, started)


async def poll_changes(
    res: Resources, tenant_ctx: TenantContext, run_id: str, *, dry_run: bool = False
) -> int:
    """Sync the users Lucca changed since the last poll; a dry run plans them instead, and
    moves neither the watermark nor the status: the real poll afterwards finds them again."""
    tenant = tenant_ctx.tenant
    changes = await changed_user_ids(res, tenant_ctx, run_id)
    ids = changes.user_ids
    await res.runs.set_state(tenant, run_id, RunState.RUNNING, expected=len(ids))
    if not ids:
        await res.runs.set_state(tenant, run_id, RunState.DONE)
    elif dry_run:
        await enqueue_plan_users(res.redis, tenant, run_id, ids)
    else:
        await enqueue_user_syncs(res.redis, tenant, ids, run_id=run_id)
    if dry_run:
        return len(ids)
    await note_unreadable(res, tenant, changes.unreadable, run_id=run_id)
    # Advanced only once every change is safely queued.
    await polling.set_watermark(res.redis, tenant, changes.started)
    await res.records.note(tenant, last_poll=changes.started.isoformat())
    return len(ids)


NIGHTLY_WINDOW = timedelta(hours=3)


def nightly_slot(now_local: datetime, nightly_at: str) -> date | None:
    """The night whose run is due now (the date it started), or None.

    Due for three hours after the tenant's nightly time, so that a missed tick still runs it;
    the slot, not today's date, keys the once-per-night claim (23:45 runs span midnight).
    """
    hour, minute = (int(part) for part in nightly_at.split(":"))
    start = now_local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if start > now_local:
        start -= timedelta(days=1)
    return start.date() if now_local - start < NIGHTLY_WINDOW else None


async def claim_nightly(res: Resources, tenant_ctx: TenantContext, slot: date) -> bool:
    """One nightly run per tenant per night, however many workers ask."""
    return await polling.claim_nightly(res.redis, tenant_ctx.tenant, slot)


async def claim_poll(res: Resources, tenant_ctx: TenantContext) -> bool:
    interval = tenant_ctx.config.poll_interval_seconds
    if not interval:
        return False
    return await polling.claim_poll(res.redis, tenant_ctx.tenant, interval)


async def tick(res: Resources) -> int:
    """Every minute: start the nightly reconciliations and the polls that are due."""
    started = 0
    for tenant in await res.tenants.list():
        tenant_ctx = await res.contexts.get(tenant)
        if tenant_ctx is None:
            continue
        slot = nightly_slot(tenant_ctx.now_local(), tenant_ctx.config.nightly_at)
        if slot is not None and await claim_nightly(res, tenant_ctx, slot):
            await start_run(res, tenant, FULL_RUN, trigger=Trigger(TriggerKind.NIGHTLY))
            started += 1
        if await claim_poll(res, tenant_ctx):
            await start_run(res, tenant, CHANGES_RUN, trigger=Trigger(TriggerKind.POLL))
            started += 1
    return started

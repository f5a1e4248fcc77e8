"""Pulling changes from Lucca without webhooks: `modifiedAt` since a watermark, and the
periodic triggers (nightly reconciliation, polls, effective dates) the cron checks."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from app.resources import Resources
from app.sync import keys
from app.sync.context import TenantContext
from app.sync.enqueue import enqueue_user_syncs
from app.sync.reconcile import PAGE_SIZE, take_budget

log = logging.getLogger(__name__)

# Lucca's clock and ours may disagree; re-reading a minute costs nothing (level-triggered).
WATERMARK_OVERLAP = timedelta(minutes=2)
FIRST_POLL_LOOKBACK = timedelta(days=1)


def watermark_key(tenant: str) -> str:
    return f"t:{tenant}:watermark"


async def changed_user_ids(res: Resources, ctx: TenantContext) -> tuple[list[str], datetime]:
    """Ids modified since the watermark (minus overlap), and the new watermark to keep."""
    started = ctx.now_local().replace(tzinfo=None)
    stored = await res.redis.get(watermark_key(ctx.tenant))
    since = (
        datetime.fromisoformat(stored.decode()) - WATERMARK_OVERLAP
        if stored
        else started - FIRST_POLL_LOOKBACK
    )
    ids: list[str] = []
    offset = 0
    while True:
        await take_budget(res, ctx)
        batch = await ctx.lucca.list_page(offset, PAGE_SIZE, modified_since=since)
        ids.extend(batch.users)
        ids.extend(batch.invalid)
        if batch.item_count < PAGE_SIZE:
            break
        offset += PAGE_SIZE
    # The watermark is the poll's start, not the newest modifiedAt seen: a change made while
    # the pages were read is newer than the start and is read again by the next poll.
    return ids, started


async def poll_changes(res: Resources, ctx: TenantContext, run_id: str) -> int:
    ids, started = await changed_user_ids(res, ctx)
    await res.records.set_run(ctx.tenant, run_id, state="running", expected=len(ids))
    if ids:
        await enqueue_user_syncs(res.redis, ctx.tenant, ids, run_id=run_id)
    else:
        await res.records.set_run(ctx.tenant, run_id, state="done")
    # Advanced only once every change is safely queued.
    await res.redis.set(watermark_key(ctx.tenant), started.isoformat())
    await res.records.note(ctx.tenant, last_poll=started.isoformat())
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


async def claim_nightly(res: Resources, ctx: TenantContext, slot: date) -> bool:
    """One nightly run per tenant per night, however many workers ask."""
    key = f"{keys.status(ctx.tenant)}:nightly:{slot.isoformat()}"
    return bool(await res.redis.set(key, b"1", nx=True, ex=3 * 24 * 3600))


async def claim_poll(res: Resources, ctx: TenantContext) -> bool:
    interval = ctx.config.poll_interval_seconds
    if not interval:
        return False
    key = f"{keys.status(ctx.tenant)}:poll-slot"
    return bool(await res.redis.set(key, b"1", nx=True, ex=interval))

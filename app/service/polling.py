"""Pulling changes from Lucca without webhooks: `modifiedAt` since a watermark, and the
periodic triggers (nightly reconciliation, polls) the minute's tick checks."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.clients.lucca import LuccaBatch
from app.service.blocks import probe_tenant
from app.service.coalesced import drain_coalesced
from app.service.context import TenantContext
from app.service.jobs import enqueue_plan_users, enqueue_user_syncs
from app.service.listing import listed_ids, note_unreadable
from app.service.lucca_webhook import watch_endpoints
from app.service.reconcile_sync import read_listing
from app.service.resources import Resources
from app.service.runs import CHANGES_RUN, FULL_RUN, start_run
from app.service.watchdog import fail_stalled_runs
from app.store import polling
from app.store.run_model import RunState, Trigger, TriggerKind
from app.store.tenants import TenantStoreError

log = logging.getLogger(__name__)

# Lucca's clock and ours may disagree; re-reading a minute costs nothing: a user read again at
# the same `modifiedAt` is recognised and not synced twice.
WATERMARK_OVERLAP = timedelta(minutes=2)
FIRST_POLL_LOOKBACK = timedelta(days=1)


def lucca_since(watermark: datetime | None, now: datetime, zone: ZoneInfo) -> datetime:
    """The naive local time to ask Lucca's `modifiedAt=since,` for: the watermark (an instant;
    a naive one, stored by an earlier version, is the tenant's wall clock) less the overlap.

    Lucca's `modifiedAt` is a wall-clock time without an offset. When the clocks go back, an
    hour of wall-clock times comes again: a change in its second pass reads earlier than the
    watermark taken in its first. The start expressed at the current offset as well, the
    earlier of the two, covers it.
    """
    if watermark is None:
        start = now - FIRST_POLL_LOOKBACK
    elif watermark.tzinfo is None:
        start = watermark.replace(tzinfo=zone)  # the first pass if ambiguous: the earlier
    else:
        start = watermark
    start -= WATERMARK_OVERLAP
    local = start.astimezone(zone).replace(tzinfo=None)
    offset_now = now.astimezone(zone).utcoffset() or timedelta(0)
    at_offset_now = start.astimezone(UTC).replace(tzinfo=None) + offset_now
    return min(local, at_offset_now)


@dataclass(frozen=True, slots=True)
class Changes:
    """What a poll read: the users modified since the watermark (minus overlap), each once,
    less those the last poll read at the same `modifiedAt`; the items without a usable id
    (page offset and position -> why); the new watermark (an instant); and what this poll read
    (user -> `modifiedAt`), for the next poll to recognise."""

    user_ids: list[str]
    unreadable: dict[str, str]
    started: datetime
    read: dict[str, str] = field(default_factory=dict)


def _stamps(batch: LuccaBatch) -> dict[str, str]:
    """The `modifiedAt` of each listed user that has one."""
    return {
        user_id: user.modified_at.isoformat()
        for user_id, user in batch.users.items()
        if user.modified_at is not None
    }


async def changed_user_ids(res: Resources, tenant_ctx: TenantContext, run_id: str) -> Changes:
    """What Lucca changed since the watermark (minus overlap). A poll retried after a spent
    budget resumes at its cursor, with the start its first try pinned on the run."""
    tenant = tenant_ctx.tenant
    now = tenant_ctx.clock().isoformat()
    started = datetime.fromisoformat(await res.runs.pin(tenant, run_id, "poll_started", now))
    zone = ZoneInfo(tenant_ctx.config.timezone)
    since = lucca_since(await polling.watermark(res.redis, tenant), started, zone)
    read_before = await polling.last_read(res.redis, tenant)
    read: dict[str, str] = {}

    def not_read_before(batch: LuccaBatch) -> list[str]:
        stamps = _stamps(batch)
        read.update(stamps)
        return [
            user_id
            for user_id in listed_ids(batch)
            if user_id not in stamps or read_before.get(user_id) != stamps[user_id]
        ]

    ids, unreadable = await read_listing(
        res, tenant_ctx, run_id, modified_since=since, select=not_read_before
    )
    # The watermark is the poll's start, not the newest modifiedAt seen: a change made while
    # the pages were read is newer than the start and is read again by the next poll.
    return Changes(ids, unreadable, started, read)


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
    await polling.set_watermark(res.redis, tenant, changes.started, changes.read)
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
    """Every minute: fail the stalled runs, start the nightly reconciliations and the polls
    that are due, and the work of webhook events coalesced beyond their tenant's ingest rate.

    Each tenant apart: one whose stored configuration cannot be read or used is flagged in its
    status and skipped, and the others' runs start as usual.
    """
    await fail_stalled_runs(res)
    started = 0
    for tenant in await res.tenants.list():
        try:
            started += await _tick_tenant(res, tenant)
        except (TenantStoreError, ValueError) as exc:  # their messages name no secret
            await _flag_config_error(res, tenant, str(exc))
        except Exception as exc:  # one tenant's trouble stays its own
            log.exception("tenant=%s tick failed", tenant)
            await _flag_config_error(res, tenant, f"the tick failed: {type(exc).__name__}")
    await watch_endpoints(res)  # the webhook endpoints registered through Lucca's API
    return started


async def _tick_tenant(res: Resources, tenant: str) -> int:
    tenant_ctx = await res.contexts.get(tenant)
    if tenant_ctx is None or tenant_ctx.disconnecting:
        return 0
    await res.records.clear_notes(tenant, "config_error")  # readable and usable (again)
    started = await drain_coalesced(res, tenant)
    slot = nightly_slot(tenant_ctx.now_local(), tenant_ctx.config.nightly_at)
    if slot is not None and await claim_nightly(res, tenant_ctx, slot):
        await start_run(res, tenant, FULL_RUN, trigger=Trigger(TriggerKind.NIGHTLY))
        started += 1
    if await claim_poll(res, tenant_ctx):
        await start_run(res, tenant, CHANGES_RUN, trigger=Trigger(TriggerKind.POLL))
        started += 1
    await probe_tenant(res, tenant_ctx)  # refused credentials, employees held on one read
    return started


async def _flag_config_error(res: Resources, tenant: str, message: str) -> None:
    log.warning("tenant=%s skipped by the tick: %s", tenant, message)
    try:
        await res.records.note(tenant, config_error=message)
    except Exception:  # Redis itself failing: the next tenants are still tried
        log.exception("tenant=%s config error not recorded", tenant)

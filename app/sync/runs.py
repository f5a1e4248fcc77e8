"""Starting a run: its record first, then its first job (enqueue last, after the state)."""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis

from app.resources import Resources
from app.sync import keys
from app.sync.enqueue import enqueue_user_syncs

# Refreshed by every step of the run (workers/jobs.py): a run whose step died (a timeout, a
# lost worker) frees the tenant within this time instead of blocking its next runs.
FULL_RUN_LOCK_SECONDS = 15 * 60


async def start_run(res: Resources, tenant: str, spec: dict[str, Any], *, trigger: str) -> str:
    """Create the run record and queue its first job; a full run already running is reused."""
    mode, dry_run = spec["mode"], spec.get("dry_run", False)
    if mode == "users":
        users = spec["users"]
        run_id = await res.records.create_run(
            tenant, mode=mode, trigger=trigger, dry_run=dry_run, expected=len(users)
        )
        if dry_run:
            await res.redis.enqueue_job("plan_users", tenant, run_id, users)
        else:
            await enqueue_user_syncs(res.redis, tenant, users, run_id=run_id)
        return run_id
    if mode == "changes":
        run_id = await res.records.create_run(tenant, mode=mode, trigger=trigger, dry_run=dry_run)
        await res.redis.enqueue_job("poll_changes", tenant, run_id)
        return run_id
    confirm = spec.get("confirm_suspensions", False)
    run_id = await res.records.create_run(
        tenant,
        mode=mode,
        trigger=trigger,
        dry_run=dry_run,
        extra={"confirm_suspensions": int(confirm)},
    )
    if not dry_run:
        lock = keys.active_full_run(tenant)
        if not await res.redis.set(lock, run_id, nx=True, ex=FULL_RUN_LOCK_SECONDS):
            running = await res.redis.get(lock)
            running_id = running.decode() if running else run_id
            await res.records.set_run(tenant, run_id, state="done", merged_into=running_id)
            return running_id
    await res.redis.enqueue_job(
        "reconcile_snapshot", tenant, run_id, 1, _job_id=f"reconcile_snapshot:{tenant}:{run_id}:1"
    )
    return run_id


async def purge_tenant_state(redis: ArqRedis, tenant: str) -> int:
    """Remove every key of a deleted tenant's sync state; its queued jobs then do nothing."""
    removed = 0
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=keys.tenant_pattern(tenant), count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            removed += await redis.delete(*batch)
            batch.clear()
    if batch:
        removed += await redis.delete(*batch)
    return int(removed)

"""Putting per-user sync jobs on the queue: ids only, one job per change notice."""

from __future__ import annotations

from collections.abc import Iterable

from arq.connections import ArqRedis

from app.sync import keys

SYNC_USER = "sync_user"


async def enqueue_user_syncs(
    redis: ArqRedis,
    tenant: str,
    user_ids: Iterable[str],
    *,
    run_id: str | None = None,
    defer_seconds: float | None = None,
) -> int:
    """Queue one sync per user; returns how many were queued.

    Each notice bumps the user's generation and queues a job under its own id, so a notice
    that lands while an earlier job is queued or running is never refused by ARQ's
    `_job_id` dedupe; the older job sees a newer generation and stands down.
    """
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return 0
    pipe = redis.pipeline(transaction=False)
    for user_id in ids:
        pipe.incr(keys.gen(tenant, user_id))
    generations = await pipe.execute()
    for user_id, generation in zip(ids, generations, strict=True):
        job = await redis.enqueue_job(
            SYNC_USER,
            tenant,
            user_id,
            int(generation),
            run_id,
            _job_id=f"sync:{tenant}:{user_id}:{generation}",
            _defer_by=defer_seconds,
        )
        if job is None:  # cannot happen with a fresh generation; loud if it ever does
            raise RuntimeError(f"job for user {user_id} of {tenant} was refused by the queue")
    return len(ids)

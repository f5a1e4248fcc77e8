"""The queue's depth per tenant: every job id names its tenant."""

from __future__ import annotations

from arq.connections import ArqRedis

from app.service import jobs
from app.store import keys, queue


async def test_a_tenants_depth_counts_its_own_jobs_of_every_kind(redis: ArqRedis) -> None:
    await jobs.enqueue_user_syncs(redis, "acme", ["416", "417"])
    await jobs.enqueue_poll(redis, "acme", "run-1")
    await jobs.enqueue_department(redis, "acme", "13", "run-2")
    await jobs.enqueue_plan_users(redis, "acme", "run-3", ["416"])
    await jobs.enqueue_reconcile_step(redis, jobs.Job.RECONCILE_PAGE, "acme", "run-4", 0)
    # Another tenant whose name holds this one's, and one named like the cron job.
    await jobs.enqueue_user_syncs(redis, "acme-2", ["1", "2", "3"])
    await jobs.enqueue_poll(redis, "tick", "run-5")
    await redis.zadd(keys.queue(), {"cron:tick:1764900000000": 0})

    assert await queue.depth(redis) == 11
    assert await queue.tenant_depth(redis, "acme") == 6
    assert await queue.tenant_depth(redis, "acme-2") == 3
    assert await queue.tenant_depth(redis, "tick") == 1
    assert await queue.tenant_depth(redis, "globex") == 0


def test_a_job_id_names_its_tenant() -> None:
    assert keys.job_tenant(keys.sync_job_id("acme", "416", 3)) == "acme"
    assert keys.job_tenant(keys.run_job_id("poll_changes", "acme", "r")) == "acme"
    assert keys.job_tenant(keys.step_job_id("reconcile_page", "acme", "r", 0)) == "acme"
    assert keys.job_tenant("cron:tick:1764900000000") is None
    assert keys.job_tenant("0f3a9c") is None  # an id ARQ made up names no tenant

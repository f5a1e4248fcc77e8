"""The queue: its depth per tenant (every job id names its tenant), and notice numbers (each
change notice takes the tenant's next number, so a reconciliation that noted the number before
its Lucca read knows who was noticed after it; generations stay per user)."""

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


async def test_each_notice_takes_the_tenants_next_number(redis: ArqRedis) -> None:
    assert await queue.bump_generations(redis, "acme", ["416", "417"], None) == [1, 1]
    mark = await queue.notice_mark(redis, "acme")
    assert mark == 1
    assert await queue.bump_generations(redis, "acme", ["417"], None) == [2]  # per user
    assert not await queue.noticed_after(redis, "acme", "416", mark)
    assert await queue.noticed_after(redis, "acme", "417", mark)
    assert not await queue.noticed_after(redis, "acme", "999", mark)  # never noticed
    assert await queue.notice_mark(redis, "other") == 0  # each tenant its own


async def test_a_duplicate_notice_takes_no_number(redis: ArqRedis) -> None:
    assert await queue.bump_generations(redis, "acme", ["416"], ("mark", 60)) == [1]
    assert await queue.bump_generations(redis, "acme", ["416"], ("mark", 60)) is None
    assert await queue.notice_mark(redis, "acme") == 1

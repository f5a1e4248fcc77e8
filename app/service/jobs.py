"""The jobs, by name: the ONLY place job names live, and the typed ways to queue each one.

The names are a stored format (queued jobs carry them), so they never change.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from enum import StrEnum

from arq.connections import ArqRedis

from app.store import keys, queue
from app.store.queue import Stage


class Job(StrEnum):
    SYNC_USER = "sync_user"
    RECONCILE_SNAPSHOT = "reconcile_snapshot"
    RECONCILE_PAGE = "reconcile_page"
    RECONCILE_FINISH = "reconcile_finish"
    POLL_CHANGES = "poll_changes"
    SYNC_DEPARTMENT = "sync_department"
    PLAN_USERS = "plan_users"
    SYNC_USER_DUE = "sync_user_due"
    TICK = "cron:tick"  # ARQ's name for the cron job of `tick`
    RELEASE_PAGE = "release_page"
    SEND_ALERT = "send_alert"
    ALERTS_TICK = "cron:alerts_tick"  # ARQ's name for the cron job of `alerts_tick`
    DRAIN_COALESCED = "drain_coalesced"  # webhook events past the ingest rate
    LUCCA_WEBHOOK = "lucca_webhook"  # register or watch a tenant's endpoint in Lucca


# The steps of runs: each reads or writes up to a page of employees, seconds of CPU. They wait
# in a queue of their own so that a process serving that queue alone (the Procfile's
# `worker-runs:` line) takes their CPU away from the live jobs; the `worker:` process serves
# both queues, so it alone still runs every job.
RUN_STEPS = frozenset(
    {
        Job.RECONCILE_SNAPSHOT,
        Job.RECONCILE_PAGE,
        Job.RECONCILE_FINISH,
        Job.POLL_CHANGES,
        Job.SYNC_DEPARTMENT,
        Job.PLAN_USERS,
        Job.RELEASE_PAGE,
    }
)


def queue_of(job: Job) -> str:
    return keys.runs_queue() if job in RUN_STEPS else keys.queue()


async def enqueue_user_syncs(
    redis: ArqRedis,
    tenant: str,
    user_ids: Iterable[str],
    *,
    run_id: str | None = None,
    defer_seconds: float | None = None,
    dedupe: tuple[str, int] | None = None,
    also: Stage | None = None,
) -> int | None:
    """Queue one sync per user; how many were queued, or None for a duplicate notice.

    Each notice bumps the user's generation and queues a job under its own id, so a notice
    that lands while an earlier job is queued or running is never refused by ARQ's
    `_job_id` dedupe; the older job sees a newer generation and stands down. Two round trips
    whatever the number of users: the dedupe mark and the generations (a script), then the
    jobs with whatever `also` stages (the run record), in one transaction.
    """
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return 0
    generations = await queue.bump_generations(redis, tenant, ids, dedupe)
    if generations is None:
        return None
    jobs = [
        (keys.sync_job_id(tenant, user_id, generation), (tenant, user_id, generation, run_id))
        for user_id, generation in zip(ids, generations, strict=True)
    ]
    await queue.write_jobs(redis, Job.SYNC_USER.value, jobs, defer_seconds=defer_seconds, also=also)
    return len(ids)


async def enqueue_reconcile_step(
    redis: ArqRedis, step: Job, tenant: str, run_id: str, arg: int
) -> None:
    """Queue a reconciliation step (RECONCILE_SNAPSHOT, _PAGE or _FINISH) with its argument."""
    # A fixed id per step: a step re-queued after a crash is not queued twice.
    job_id = keys.step_job_id(step.value, tenant, run_id, arg)
    await queue.enqueue(
        redis, step.value, tenant, run_id, arg, job_id=job_id, queue_name=queue_of(step)
    )


async def enqueue_poll(redis: ArqRedis, tenant: str, run_id: str) -> None:
    job_id = keys.run_job_id(Job.POLL_CHANGES.value, tenant, run_id)
    await queue.enqueue(
        redis,
        Job.POLL_CHANGES.value,
        tenant,
        run_id,
        job_id=job_id,
        queue_name=queue_of(Job.POLL_CHANGES),
    )


async def enqueue_department(redis: ArqRedis, tenant: str, department_id: str, run_id: str) -> None:
    job_id = keys.run_job_id(Job.SYNC_DEPARTMENT.value, tenant, run_id)
    await queue.enqueue(
        redis,
        Job.SYNC_DEPARTMENT.value,
        tenant,
        department_id,
        run_id,
        job_id=job_id,
        queue_name=queue_of(Job.SYNC_DEPARTMENT),
    )


async def enqueue_plan_users(
    redis: ArqRedis, tenant: str, run_id: str, user_ids: list[str]
) -> None:
    job_id = keys.run_job_id(Job.PLAN_USERS.value, tenant, run_id)
    await queue.enqueue(
        redis,
        Job.PLAN_USERS.value,
        tenant,
        run_id,
        user_ids,
        job_id=job_id,
        queue_name=queue_of(Job.PLAN_USERS),
    )


# A burst coalesced in this window becomes one run (one set of batched Lucca reads).
COALESCE_WINDOW_SECONDS = 5.0


async def enqueue_drain_coalesced(redis: ArqRedis, tenant: str) -> None:
    """Start the run of the tenant's coalesced events after the window."""
    second = int(time.time())
    at = datetime.fromtimestamp(second + COALESCE_WINDOW_SECONDS, UTC)
    job_id = keys.coalesced_job_id(tenant, second)
    await queue.enqueue(redis, Job.DRAIN_COALESCED.value, tenant, job_id=job_id, defer_until=at)


async def schedule_due(
    redis: ArqRedis, tenant: str, user_id: str, last_day: date, at: datetime
) -> None:
    """Re-check a user at `at`, once per contract end however often it is scheduled."""
    job_id = keys.due_job_id(tenant, user_id, last_day)
    await queue.enqueue(
        redis, Job.SYNC_USER_DUE.value, tenant, user_id, job_id=job_id, defer_until=at
    )


async def enqueue_release_page(
    redis: ArqRedis, tenant: str, run_id: str, sweep: int, start: int
) -> None:
    """Queue one page of a release's sweep over Elevo's listing (`start`: SCIM's 1-based index)."""
    job_id = keys.release_job_id(tenant, run_id, sweep, start)
    await queue.enqueue(
        redis,
        Job.RELEASE_PAGE.value,
        tenant,
        run_id,
        sweep,
        start,
        job_id=job_id,
        queue_name=queue_of(Job.RELEASE_PAGE),
    )


async def enqueue_alert(redis: ArqRedis, tenant: str, notice_id: str) -> None:
    """Queue the sending of one alert notice, once however often it is asked."""
    job_id = keys.alert_job_id(tenant, notice_id)
    await queue.enqueue(redis, Job.SEND_ALERT.value, tenant, notice_id, job_id=job_id)


async def enqueue_lucca_webhook(redis: ArqRedis, tenant: str, action: str) -> None:
    """Register ("register") or check ("watch") the tenant's webhook endpoint in Lucca."""
    job_id = keys.lucca_webhook_job_id(tenant, action)
    await queue.enqueue(redis, Job.LUCCA_WEBHOOK.value, tenant, action, job_id=job_id)

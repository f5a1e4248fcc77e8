"""ARQ job functions: thin adapters from ARQ's ctx dict to the service, Defer -> Retry.

`ctx` here is always ARQ's dict (see `WorkerContext`), never a tenant's context.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from arq import Retry
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.service import alerts, coalesced, polling, release, steps
from app.service import lucca_webhook as webhook_endpoint
from app.service import sync_user as user_job
from app.service.resources import Resources
from app.service.results import Defer, JobResult

# ARQ hands every job a plain dict (its WorkerCoroutine type says `dict[Any, Any]`):
#   "resources"       our Resources, set at start-up (workers/worker.py) or lent by a test;
#   "owns_resources"  False when a test lent them (then the worker does not close them);
#   "job_try", "job_id", "redis", ...  ARQ's own.
WorkerContext = dict[Any, Any]

log = logging.getLogger(__name__)

# A job that lost Redis midway (a restart, a failover) runs again after this, plus jitter.
REDIS_RETRY_SECONDS = 2.0

P = ParamSpec("P")
R = TypeVar("R")


def retried_through_redis_blips(
    job: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """ARQ fails a job that raises for good: one that lost Redis midway would leave its change
    to the nightly run. Every job is idempotent, so it runs again instead. (Should Redis stay
    away, ARQ cannot record the retry either; the worker exits, and its jobs run again once
    its heartbeat lapses: app/store/running_jobs.py.)"""

    @functools.wraps(job)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await job(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("%s lost Redis, runs again: %s", job.__name__, exc)
            raise Retry(defer=REDIS_RETRY_SECONDS + random.uniform(0, REDIS_RETRY_SECONDS)) from exc

    return run


def _resources(ctx: WorkerContext) -> Resources:
    resources: Resources = ctx["resources"]
    return resources


def _finish(result: JobResult) -> str:
    if isinstance(result, Defer):
        raise Retry(defer=result.seconds)
    return result.result


@retried_through_redis_blips
async def sync_user(
    ctx: WorkerContext, tenant: str, user_id: str, generation: int, run_id: str | None = None
) -> str:
    """Bring one employee's Elevo profile in line with Lucca (level-triggered, idempotent)."""
    result = await user_job.sync_user(
        _resources(ctx), tenant, user_id, generation, run_id, job_try=ctx.get("job_try", 1)
    )
    return _finish(result)


@retried_through_redis_blips
async def reconcile_snapshot(ctx: WorkerContext, tenant: str, run_id: str, start: int = 1) -> str:
    return _finish(await steps.reconcile_snapshot_step(_resources(ctx), tenant, run_id, start))


@retried_through_redis_blips
async def reconcile_page(ctx: WorkerContext, tenant: str, run_id: str, offset: int) -> str:
    return _finish(await steps.reconcile_page_step(_resources(ctx), tenant, run_id, offset))


@retried_through_redis_blips
async def reconcile_finish(ctx: WorkerContext, tenant: str, run_id: str, part: int = 0) -> str:
    return _finish(await steps.reconcile_finish_step(_resources(ctx), tenant, run_id, part))


@retried_through_redis_blips
async def poll_changes(ctx: WorkerContext, tenant: str, run_id: str) -> str:
    return _finish(await steps.poll_changes_step(_resources(ctx), tenant, run_id))


@retried_through_redis_blips
async def sync_department(ctx: WorkerContext, tenant: str, department_id: str, run_id: str) -> str:
    """A department was renamed: every member's profile shows the new name."""
    return _finish(await steps.sync_department(_resources(ctx), tenant, department_id, run_id))


@retried_through_redis_blips
async def plan_users(ctx: WorkerContext, tenant: str, run_id: str, user_ids: list[str]) -> str:
    """Dry run of a user list: the plan, nothing written."""
    return _finish(await steps.plan_users(_resources(ctx), tenant, run_id, user_ids))


@retried_through_redis_blips
async def sync_user_due(ctx: WorkerContext, tenant: str, user_id: str) -> str:
    """A contract's last day has passed: re-check that user now, no event needed."""
    return await steps.sync_user_due(_resources(ctx), tenant, user_id)


@retried_through_redis_blips
async def release_page(ctx: WorkerContext, tenant: str, run_id: str, sweep: int, start: int) -> str:
    """A disconnecting tenant: one page of Elevo's listing given back (syncSource removed)."""
    return _finish(await release.release_page_step(_resources(ctx), tenant, run_id, sweep, start))


@retried_through_redis_blips
async def drain_coalesced(ctx: WorkerContext, tenant: str) -> int:
    """Webhook events past the tenant's ingest rate: one run for what they named."""
    return await coalesced.drain_coalesced(_resources(ctx), tenant)


async def tick(ctx: WorkerContext) -> int:
    """Every minute: start the nightly reconciliations and the polls that are due."""
    return await polling.tick(_resources(ctx))


@retried_through_redis_blips
async def send_alert(ctx: WorkerContext, tenant: str, notice_id: str) -> str:
    """POST one alert notice to the tenant's alerts_url, signed."""
    result = await alerts.send_alert(
        _resources(ctx), tenant, notice_id, job_try=ctx.get("job_try", 1)
    )
    return _finish(result)


async def alerts_tick(ctx: WorkerContext) -> int:
    """Every minute: raise or clear each tenant's alerts, and queue their notices."""
    return await alerts.alerts_tick(_resources(ctx))


@retried_through_redis_blips
async def lucca_webhook(ctx: WorkerContext, tenant: str, action: str) -> str:
    """Register or watch the tenant's webhook endpoint in Lucca (issue 15)."""
    return _finish(await webhook_endpoint.webhook_job(_resources(ctx), tenant, action))

"""ARQ job functions: thin, typed, ids in, explicit retries out."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime
from functools import partial
from typing import Any

from arq import Retry

from app.core.decision import Action, Decision
from app.errors import ElevoRateLimited, LuccaRateLimited, UpstreamError
from app.metrics import JOBS, WEBHOOK_TO_ELEVO
from app.resources import Resources
from app.sync import keys
from app.sync.batcher import LuccaThrottled
from app.sync.context import TenantContext
from app.sync.employee import EmployeeSync
from app.sync.enqueue import enqueue_user_syncs
from app.sync.polling import (
    claim_nightly,
    claim_poll,
    nightly_slot,
    poll_changes,
)
from app.sync.reconcile import (
    PAGE_SIZE,
    RunOptions,
    reconcile_finish,
    reconcile_page,
    snapshot_page,
    take_budget,
)
from app.sync.runs import FULL_RUN_LOCK_SECONDS, start_run
from app.sync.schedule import schedule_contract_ends
from app.sync.userlock import UserLock

log = logging.getLogger(__name__)

# Short: after a SIGKILL, ARQ re-runs a job once the largest timeout of all functions passes.
SYNC_USER_TIMEOUT = 30
# ARQ's tries also count waits for the Lucca budget and for a busy user, which are no failures;
# real failures are counted apart (keys.failures) and end the retries after this many.
SYNC_USER_MAX_TRIES = 1000
MAX_UPSTREAM_FAILURES = 10
FAILURE_MEMORY_SECONDS = 6 * 3600


# ARQ hands every job a plain dict: "resources" (ours), "job_try", "job_id", "redis".
WorkerContext = dict[Any, Any]


def backoff(job_try: int, *, base: float = 1.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter around the step (0.5x to 1.5x)."""
    step: float = min(cap, base * 2 ** max(0, job_try - 1))
    return step * random.uniform(0.5, 1.5)


def retry_delay(exc: Exception, job_try: int) -> float:
    if isinstance(exc, LuccaThrottled):
        return exc.wait + random.uniform(0, 1.0)
    if isinstance(exc, LuccaRateLimited | ElevoRateLimited) and exc.retry_after:
        return float(exc.retry_after) + random.uniform(0, 1.0)
    return backoff(job_try)


async def sync_user(
    ctx: WorkerContext, tenant: str, user_id: str, generation: int, run_id: str | None = None
) -> str:
    """Bring one employee's Elevo profile in line with Lucca (level-triggered, idempotent)."""
    res: Resources = ctx["resources"]
    latest = await res.redis.get(keys.gen(tenant, user_id))
    if latest is not None and int(latest) > generation:
        if run_id is not None:
            await res.records.count(tenant, run_id, user_id, "superseded")
        return "superseded"
    lock = UserLock(res.redis, tenant, user_id)
    wait = await lock.acquire(SYNC_USER_TIMEOUT + 10)
    if wait:
        # The holder may finish long before its lock would expire: look again soon.
        soon = min(wait, res.settings.user_cooldown_seconds + random.uniform(0.05, 0.25))
        return await _defer(ctx, tenant, user_id, generation, run_id, soon)
    synced = True
    try:
        context = await res.contexts.get(tenant)
        if context is None:
            return "unknown tenant"
        fetch = partial(
            res.batcher.fetch, tenant, context.lucca, context.config.lucca_requests_per_minute
        )
        employee = EmployeeSync(context, res.redis, res.records, fetch, run_id=run_id)
        failures_key = keys.failures(tenant, user_id)
        try:
            outcome = await employee.sync(user_id)
        except LuccaThrottled as exc:  # waiting for the budget is no failure
            synced = False  # nothing was done: the next try must not wait for a cooldown
            return await _defer(ctx, tenant, user_id, generation, run_id, retry_delay(exc, 1))
        except UpstreamError as exc:  # only retryable ones reach here
            synced = False
            failures = await count_failure(res, failures_key)
            if failures > MAX_UPSTREAM_FAILURES:
                await _give_up(res, tenant, user_id, run_id, failures, exc)
                return "gave up"
            log.info("tenant=%s user=%s retry %s: %s", tenant, user_id, failures, exc)
            delay = retry_delay(exc, failures)
            return await _defer(ctx, tenant, user_id, generation, run_id, delay)
        await res.redis.delete(failures_key)
        await schedule_contract_ends(res, context, employee.contract_ends)
        follow_ups = set(employee.follow_ups) - {user_id}
        if follow_ups:
            await enqueue_user_syncs(res.redis, tenant, follow_ups, defer_seconds=0.0)
        if outcome.written and run_id is not None:
            await observe_webhook_lag(res, tenant, run_id)
        JOBS.labels("sync_user", outcome.decision.action.value).inc()
        return outcome.decision.action.value
    finally:
        await lock.release(res.settings.user_cooldown_seconds if synced else 0.0)


async def count_failure(res: Resources, key: str) -> int:
    """Consecutive upstream failures: backoff grows with these, not with ARQ's tries (which
    also count waits for the budget or for a busy user)."""
    pipe = res.redis.pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, FAILURE_MEMORY_SECONDS)
    failures, _ = await pipe.execute()
    return int(failures)


async def _give_up(
    res: Resources, tenant: str, user_id: str, run_id: str | None, failures: int, exc: Exception
) -> None:
    """Not retried for ever: recorded against the user; the next reconciliation tries again."""
    await res.redis.delete(keys.failures(tenant, user_id))
    reason = f"gave up after {failures - 1} failed tries: {exc}"
    decision = Decision(user_id, Action.ERROR, reason)
    await res.records.decision(tenant, decision, run_id=run_id, written=False, error=reason)
    log.warning("tenant=%s user=%s %s", tenant, user_id, reason)


async def observe_webhook_lag(res: Resources, tenant: str, run_id: str) -> None:
    """Receipt of the webhook -> this Elevo write, for the lag histogram."""
    created, trigger = await res.redis.hmget(keys.run(tenant, run_id), ["created_at", "trigger"])
    if created is None or trigger is None or not trigger.startswith(b"webhook"):
        return
    received = datetime.fromisoformat(created.decode().replace("Z", "+00:00"))
    WEBHOOK_TO_ELEVO.observe(max(0.0, (datetime.now(UTC) - received).total_seconds()))


async def _defer(
    ctx: WorkerContext,
    tenant: str,
    user_id: str,
    generation: int,
    run_id: str | None,
    delay: float,
) -> str:
    """Retry later; a job out of tries hands over to a fresh one, so no change is dropped."""
    if ctx.get("job_try", 1) < SYNC_USER_MAX_TRIES - 1:
        raise Retry(defer=delay)
    redis = ctx["resources"].redis
    await enqueue_user_syncs(redis, tenant, [user_id], run_id=run_id, defer_seconds=delay)
    log.warning(
        "tenant=%s user=%s gen=%s handed over after many tries", tenant, user_id, generation
    )
    return "handed over"


# -- full reconciliation: a chain of short jobs (app/sync/reconcile.py) -----------------------

RECONCILE_TIMEOUT = 60
RECONCILE_MAX_TRIES = 1000  # budget waits count as tries; failures are counted apart


async def _run_context(
    ctx: WorkerContext, tenant: str, run_id: str
) -> tuple[TenantContext, RunOptions] | None:
    res: Resources = ctx["resources"]
    context = await res.contexts.get(tenant)
    run = await res.records.run_fields(tenant, run_id, "dry_run", "confirm_suspensions")
    if context is None or run is None:
        return None
    return context, RunOptions.from_record(run)


async def _step(ctx: WorkerContext, tenant: str, run_id: str, step: Any) -> str:
    """Run one reconciliation step with the retry policy shared by every step."""
    found = await _run_context(ctx, tenant, run_id)
    if found is None:
        return "unknown tenant or run"
    context, options = found
    res: Resources = ctx["resources"]
    failures_key = f"{keys.run(tenant, run_id)}:failures"
    try:
        done = str(await step(res, context, options))
        pipe = res.redis.pipeline(transaction=False)
        pipe.delete(failures_key)  # consecutive failures only
        pipe.expire(keys.active_full_run(tenant), FULL_RUN_LOCK_SECONDS)  # alive: keep the lock
        await pipe.execute()
        return done
    except LuccaThrottled as exc:  # waiting for the budget is no failure: never fails a run
        raise Retry(defer=retry_delay(exc, 1)) from exc
    except UpstreamError as exc:
        failures = await count_failure(res, failures_key)
        if exc.retryable and failures <= MAX_UPSTREAM_FAILURES:
            log.info("tenant=%s run=%s step retry %s: %s", tenant, run_id, failures, exc)
            raise Retry(defer=retry_delay(exc, failures)) from exc
        return await _fail_run(res, tenant, run_id, str(exc))
    except Exception as exc:
        # A bug must not leave the run "running" for ever, nor the full-run lock held.
        log.exception("tenant=%s run=%s step crashed", tenant, run_id)
        return await _fail_run(res, tenant, run_id, f"internal error: {type(exc).__name__}")


async def _fail_run(res: Resources, tenant: str, run_id: str, reason: str) -> str:
    await res.records.set_run(tenant, run_id, state="failed", error=reason)
    await res.redis.delete(keys.active_full_run(tenant))
    log.warning("tenant=%s run=%s failed: %s", tenant, run_id, reason)
    return "failed"


async def reconcile_snapshot(ctx: WorkerContext, tenant: str, run_id: str, start: int = 1) -> str:
    async def step(res: Resources, context: TenantContext, options: RunOptions) -> str:
        if start == 1:
            await res.records.set_run(tenant, run_id, state="running")
        following = await snapshot_page(res, context, run_id, start)
        if following is not None:
            await _enqueue_step(res, "reconcile_snapshot", tenant, run_id, following)
        else:
            await _enqueue_step(res, "reconcile_page", tenant, run_id, 0)
        return "ok"

    return await _step(ctx, tenant, run_id, step)


async def reconcile_page_job(ctx: WorkerContext, tenant: str, run_id: str, offset: int) -> str:
    async def step(res: Resources, context: TenantContext, options: RunOptions) -> str:
        more = await reconcile_page(res, context, options, offset)
        if more:
            await _enqueue_step(res, "reconcile_page", tenant, run_id, offset + PAGE_SIZE)
        else:
            await _enqueue_step(res, "reconcile_finish", tenant, run_id, 0)
        return "ok"

    return await _step(ctx, tenant, run_id, step)


async def reconcile_finish_job(ctx: WorkerContext, tenant: str, run_id: str, _: int = 0) -> str:
    async def step(res: Resources, context: TenantContext, options: RunOptions) -> str:
        state = await reconcile_finish(res, context, options)
        await res.redis.delete(keys.active_full_run(tenant))
        return state

    return await _step(ctx, tenant, run_id, step)


async def _enqueue_step(res: Resources, function: str, tenant: str, run_id: str, arg: int) -> None:
    # A fixed id per step: a step re-queued after a crash is not queued twice.
    await res.redis.enqueue_job(
        function, tenant, run_id, arg, _job_id=f"{function}:{tenant}:{run_id}:{arg}"
    )


# -- polls, departments, dry runs, schedules ---------------------------------------------------


async def sync_user_due(ctx: WorkerContext, tenant: str, user_id: str) -> str:
    """A contract's last day has passed: re-check that user now, no event needed."""
    await enqueue_user_syncs(ctx["resources"].redis, tenant, [user_id])
    return "queued"


async def poll_changes_job(ctx: WorkerContext, tenant: str, run_id: str) -> str:
    async def step(res: Resources, context: TenantContext, options: RunOptions) -> str:
        return f"{await poll_changes(res, context, run_id)} changed"

    return await _step(ctx, tenant, run_id, step)


async def sync_department(ctx: WorkerContext, tenant: str, department_id: str, run_id: str) -> str:
    """A department was renamed: every member's profile shows the new name."""

    async def step(res: Resources, context: TenantContext, options: RunOptions) -> str:
        ids: list[str] = []
        offset = 0
        while True:
            await take_budget(res, context)
            batch = await context.lucca.list_page(offset, PAGE_SIZE, department_id=department_id)
            ids.extend([*batch.users, *batch.invalid])
            if batch.item_count < PAGE_SIZE:
                break
            offset += PAGE_SIZE
        await res.records.set_run(tenant, run_id, state="running", expected=len(ids))
        if ids:
            await enqueue_user_syncs(res.redis, tenant, ids, run_id=run_id)
        else:
            await res.records.set_run(tenant, run_id, state="done")
        return f"{len(ids)} members"

    return await _step(ctx, tenant, run_id, step)


async def plan_users(ctx: WorkerContext, tenant: str, run_id: str, user_ids: list[str]) -> str:
    """Dry run of a user list: the plan, nothing written."""

    async def step(res: Resources, context: TenantContext, options: RunOptions) -> str:
        await res.records.set_run(tenant, run_id, state="running")
        fetch = partial(
            res.batcher.fetch, tenant, context.lucca, context.config.lucca_requests_per_minute
        )
        employee = EmployeeSync(context, res.redis, res.records, fetch, run_id=run_id, dry_run=True)
        for user_id in user_ids:
            await employee.sync(user_id)
        return "planned"

    return await _step(ctx, tenant, run_id, step)


async def tick(ctx: WorkerContext) -> int:
    """Every minute: start the nightly reconciliations and the polls that are due."""
    res: Resources = ctx["resources"]
    started = 0
    for tenant in await res.tenants.list():
        context = await res.contexts.get(tenant)
        if context is None:
            continue
        slot = nightly_slot(context.now_local(), context.config.nightly_at)
        if slot is not None and await claim_nightly(res, context, slot):
            await start_run(res, tenant, {"mode": "full"}, trigger="nightly")
            started += 1
        if await claim_poll(res, context):
            await start_run(res, tenant, {"mode": "changes"}, trigger="poll")
            started += 1
    return started

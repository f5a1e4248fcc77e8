"""The short jobs of a run (reconciliation steps, polls, departments, dry runs), each run under
one retry policy: budget waits defer, passing failures defer with backoff, the rest fail the run.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.clients.errors import LuccaAuthError, RateLimited, UpstreamError
from app.clients.lucca import LuccaBatch
from app.core.lucca_user import is_user_id
from app.service.batcher import MAX_IDS_PER_REQUEST, NOT_A_USER_ID, LuccaThrottled
from app.service.blocks import hold_while_paused, run_waits_for_credential
from app.service.context import TenantContext
from app.service.jobs import Job, enqueue_reconcile_step, enqueue_user_syncs
from app.service.pacing import flag_refused_key, honour_rate_limit
from app.service.polling import poll_changes
from app.service.reconcile import PAGES_SLICE_SECONDS, reconcile_pages, snapshot_page
from app.service.reconcile_finish import FINISH_SLICE_SECONDS, TimeSlice, reconcile_finish
from app.service.reconcile_sync import (
    RunOptions,
    fetch_ids,
    merged,
    read_listing,
    slice_employee,
    sync_or_record,
)
from app.service.resources import Resources
from app.service.results import Defer, Done, JobResult, own_deadline, retry_delay
from app.service.runs import fail_run
from app.store import keys, run_progress
from app.store.failures import Failures
from app.store.run_model import Run, RunMode, RunState

log = logging.getLogger(__name__)

RECONCILE_MAX_TRIES = 1000  # budget waits count as tries; failures are counted apart
MAX_STEP_FAILURES = 10

Step = Callable[[Resources, TenantContext, RunOptions], Awaitable[str]]


async def run_step(res: Resources, tenant: str, run_id: str, step: Step) -> JobResult:
    """Run one step of a run with the retry policy shared by every step."""
    tenant_ctx = await res.contexts.get(tenant)
    run = await res.runs.get(tenant, run_id)
    if tenant_ctx is None or run is None:
        return Done("unknown tenant or run")
    stopped = await _stopped(res, tenant_ctx, run)
    if stopped is not None:
        return stopped
    failures_key = keys.run_failures(tenant, run_id)
    deadline = own_deadline(res.settings.step_job_timeout_seconds)
    try:
        async with asyncio.timeout(deadline):
            done = str(await step(res, tenant_ctx, RunOptions.of(run)))
        pipe = res.redis.pipeline(transaction=False)
        Failures.stage_clear(pipe, failures_key)  # consecutive failures only
        if run.mode is RunMode.FULL and not run.dry_run:
            res.full_run_lock.stage_refresh(pipe, tenant)  # alive: keep the lock
        run_progress.stage_progress(pipe, tenant, run_id)
        await pipe.execute()
        return Done(done)
    except LuccaThrottled as exc:  # waiting for the budget is no failure: never fails a run
        await run_progress.note_progress(res.redis, tenant, run_id)  # a tenant-level wait
        return Defer(retry_delay(exc, 1))
    except RateLimited as exc:  # a 429: every process waits as asked; no failure either
        await run_progress.note_progress(res.redis, tenant, run_id)
        return Defer(await honour_rate_limit(res, tenant_ctx, exc) + random.uniform(0, 1.0))
    except TimeoutError:
        # ARQ would fail the job for good and leave the run "running", the tenant locked.
        reason = f"a step of the run took longer than {deadline:g} s"
        return Done(await fail_run(res, tenant, run_id, reason))
    except UpstreamError as exc:
        return await _step_failed(res, tenant, run, exc)
    except (RedisConnectionError, RedisTimeoutError):
        raise  # Redis went away midway: the job runs again (workers/jobs.py), the run goes on
    except Exception as exc:
        # A bug must not leave the run "running" for ever, nor the full-run lock held.
        log.exception("tenant=%s run=%s step crashed", tenant, run_id)
        return Done(await fail_run(res, tenant, run_id, f"internal error: {type(exc).__name__}"))


async def _stopped(res: Resources, tenant_ctx: TenantContext, run: Run) -> JobResult | None:
    """Why this run goes no further now, if it does not: failed meanwhile (a timeout, the
    watchdog), a tenant disconnecting, or paused (the run starts afresh on resume)."""
    tenant = tenant_ctx.tenant
    if run.state is RunState.FAILED:
        return Done("run failed")
    if tenant_ctx.disconnecting:  # its release gives the profiles back: no run writes now
        return Done(await fail_run(res, tenant, run.id, "the tenant is disconnecting"))
    if run.mode in (RunMode.FULL, RunMode.CHANGES) and not run.dry_run:
        held = await hold_while_paused(res, tenant, full=run.mode is RunMode.FULL)
        if held is not None:  # a full run frees the tenant meanwhile
            await res.runs.set_state(tenant, run.id, RunState.HELD, waiting=held)
            await res.full_run_lock.release(tenant, run.id)
            return Done("paused")
    return None


async def _step_failed(res: Resources, tenant: str, run: Run, exc: UpstreamError) -> JobResult:
    """A passing failure is retried with backoff; a refused credential makes the run wait for
    it; anything else fails the run."""
    if isinstance(exc, LuccaAuthError):  # no process calls Lucca with this key again
        await flag_refused_key(res, tenant, exc)
    failures = await res.failures.count(keys.run_failures(tenant, run.id))
    if exc.retryable and failures <= MAX_STEP_FAILURES:
        log.info("tenant=%s run=%s step retry %s: %s", tenant, run.id, failures, exc)
        return Defer(retry_delay(exc, failures))
    if await run_waits_for_credential(res, tenant, run, exc):
        return Done("waiting")
    return Done(await fail_run(res, tenant, run.id, str(exc)))


async def reconcile_snapshot_step(
    res: Resources, tenant: str, run_id: str, start: int = 1
) -> JobResult:
    async def step(res: Resources, tenant_ctx: TenantContext, options: RunOptions) -> str:
        if start == 1:
            await res.runs.set_state(tenant, run_id, RunState.RUNNING)
        following = await snapshot_page(res, tenant_ctx, run_id, start)
        if following is not None:
            await enqueue_reconcile_step(
                res.redis, Job.RECONCILE_SNAPSHOT, tenant, run_id, following
            )
        else:
            await enqueue_reconcile_step(res.redis, Job.RECONCILE_PAGE, tenant, run_id, 0)
        return "ok"

    return await run_step(res, tenant, run_id, step)


async def reconcile_page_step(res: Resources, tenant: str, run_id: str, offset: int) -> JobResult:
    async def step(res: Resources, tenant_ctx: TenantContext, options: RunOptions) -> str:
        time_slice = TimeSlice(PAGES_SLICE_SECONDS)
        following = await reconcile_pages(res, tenant_ctx, options, offset, time_slice)
        if following is not None:
            await enqueue_reconcile_step(res.redis, Job.RECONCILE_PAGE, tenant, run_id, following)
        else:
            await enqueue_reconcile_step(res.redis, Job.RECONCILE_FINISH, tenant, run_id, 0)
        return "ok"

    return await run_step(res, tenant, run_id, step)


async def reconcile_finish_step(
    res: Resources, tenant: str, run_id: str, part: int = 0
) -> JobResult:
    """The finish, in as many jobs (`part` 0, 1, ...) as its time slices need."""

    async def step(res: Resources, tenant_ctx: TenantContext, options: RunOptions) -> str:
        state = await reconcile_finish(res, tenant_ctx, options, TimeSlice(FINISH_SLICE_SECONDS))
        if state is None:
            await enqueue_reconcile_step(res.redis, Job.RECONCILE_FINISH, tenant, run_id, part + 1)
            return "continued"
        await res.full_run_lock.release(tenant, run_id)
        return state

    return await run_step(res, tenant, run_id, step)


async def poll_changes_step(res: Resources, tenant: str, run_id: str) -> JobResult:
    async def step(res: Resources, tenant_ctx: TenantContext, options: RunOptions) -> str:
        changed = await poll_changes(res, tenant_ctx, run_id, dry_run=options.dry_run)
        return f"{changed} changed"

    return await run_step(res, tenant, run_id, step)


async def sync_department(
    res: Resources, tenant: str, department_id: str, run_id: str
) -> JobResult:
    """A department was renamed: every member's profile shows the new name."""

    async def step(res: Resources, tenant_ctx: TenantContext, options: RunOptions) -> str:
        ids, _ = await read_listing(res, tenant_ctx, run_id, department_id=department_id)
        # The run counts each member once to know it is done.
        await res.runs.set_state(tenant, run_id, RunState.RUNNING, expected=len(ids))
        if ids:
            await enqueue_user_syncs(res.redis, tenant, ids, run_id=run_id)
        else:
            await res.runs.set_state(tenant, run_id, RunState.DONE)
        return f"{len(ids)} members"

    return await run_step(res, tenant, run_id, step)


async def plan_users(res: Resources, tenant: str, run_id: str, user_ids: list[str]) -> JobResult:
    """Dry run of a user list: the plan, nothing written. 500 users per Lucca request; a plan
    retried after a spent budget skips the users it has planned and reads nobody twice."""

    async def step(res: Resources, tenant_ctx: TenantContext, options: RunOptions) -> str:
        planned = await res.runs.outcome_users(tenant, run_id)
        remaining = [user_id for user_id in dict.fromkeys(user_ids) if user_id not in planned]
        if remaining and not planned:
            await res.runs.set_state(tenant, run_id, RunState.RUNNING)
        for start in range(0, len(remaining), MAX_IDS_PER_REQUEST):
            chunk = remaining[start : start + MAX_IDS_PER_REQUEST]
            readable = [user_id for user_id in chunk if is_user_id(user_id)]
            batch, _ = await fetch_ids(res, tenant_ctx, run_id, readable)
            unreadable = {uid: NOT_A_USER_ID for uid in chunk if uid not in readable}
            batch = merged(batch, LuccaBatch(users={}, invalid=unreadable, item_count=0))
            employee = slice_employee(
                res, tenant_ctx, options, fetch_managers=True, defer_suspensions=False
            )
            await sync_or_record(employee, chunk, batch)
        return "planned"

    return await run_step(res, tenant, run_id, step)


async def sync_user_due(res: Resources, tenant: str, user_id: str) -> str:
    """A contract's last day has passed: re-check that user now, no event needed."""
    await enqueue_user_syncs(res.redis, tenant, [user_id])
    return "queued"

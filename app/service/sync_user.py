"""The per-user sync job's body: superseded, busy, throttled, retried, given up or handed over."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial

from app.clients.errors import RateLimited, UpstreamError
from app.core.decision import Action, Decision
from app.core.lucca_user import is_user_id
from app.metrics import JOBS, WEBHOOK_TO_ELEVO
from app.service.batcher import LuccaThrottled
from app.service.blocks import (
    keep_while_paused,
    proven,
    read_refused_flags,
    stage_refused_flags,
)
from app.service.context import TenantContext
from app.service.employee import EmployeeSync
from app.service.jobs import Job, enqueue_user_syncs
from app.service.outcomes import Outcome, record_decision
from app.service.resources import Resources
from app.service.results import Defer, Done, JobResult, own_deadline, retry_delay
from app.service.schedule import schedule_contract_ends
from app.service.waiting import Reason
from app.store import keys, queue, run_progress
from app.store.budget import Priority
from app.store.failures import Failures
from app.store.locks import UserLock
from app.store.parked import Pause, TenantPause
from app.store.runs import CountAnswers

log = logging.getLogger(__name__)

# ARQ's tries also count waits for the Lucca budget and for a busy user, which are no failures;
# real failures are counted apart (app/store/failures.py) and end the retries after this many.
SYNC_USER_MAX_TRIES = 1000
MAX_UPSTREAM_FAILURES = 10


async def sync_user(
    res: Resources,
    tenant: str,
    user_id: str,
    generation: int,
    run_id: str | None = None,
    *,
    job_try: int = 1,
) -> JobResult:
    """Bring one employee's Elevo profile in line with Lucca (level-triggered, idempotent)."""
    if not is_user_id(user_id):  # a job queued by an older version for a Lucca item's position
        if run_id is not None:
            await res.runs.count(tenant, run_id, user_id, Action.SKIPPED.value)
        return Done("not a user id")
    latest, pause, refused = await _look_first(res, tenant, user_id)
    if latest is not None and latest > generation:
        if run_id is not None:
            await res.runs.count(tenant, run_id, user_id, "superseded")
        return Done("superseded")
    if pause is not None:
        await keep_while_paused(res, tenant, user_id, run_id, pause)
        return Done("paused")
    defer = partial(_defer, res, tenant, user_id, generation, run_id, job_try)
    tenant_ctx = await res.contexts.get(tenant)
    if tenant_ctx is None:
        return Done("unknown tenant")
    if tenant_ctx.disconnecting:  # its release gives the profiles back: no more writes
        return Done("tenant disconnecting")
    employee = _employee(res, tenant_ctx, run_id)
    lock = UserLock(res.redis, tenant, user_id)
    # Held past ARQ's timeout: a job cancelled mid-write still keeps the user to itself.
    wait = await _lock_and_look_up(res, lock, employee, user_id)
    if wait:
        # The holder may finish long before its lock would expire: look again soon.
        return await defer(
            min(wait, res.settings.user_cooldown_seconds + random.uniform(0.05, 0.25))
        )
    synced = True  # unless told otherwise: a job cancelled mid-write may have written
    try:
        result, synced = await _sync_held(res, tenant_ctx, employee, user_id, defer, refused)
        return result
    finally:
        # Shielded: a job cancelled (a shutdown, ARQ's timeout) still frees its user at once.
        await asyncio.shield(lock.release(res.settings.user_cooldown_seconds if synced else 0.0))


def _employee(res: Resources, tenant_ctx: TenantContext, run_id: str | None) -> EmployeeSync:
    fetch = partial(
        res.batcher.fetch,
        tenant_ctx.tenant,
        tenant_ctx.lucca,
        tenant_ctx.config.lucca_requests_per_minute,
        priority=Priority.LIVE,
    )
    return EmployeeSync(tenant_ctx, res, fetch, run_id=run_id)


async def _lock_and_look_up(
    res: Resources, lock: UserLock, employee: EmployeeSync, user_id: str
) -> float:
    """The user's lock and what its sync reads first, in one round trip: 0 when the lock is
    taken (the reads, made after it, are the sync's), else how long the holder keeps it."""
    pipe = res.redis.pipeline(transaction=False)
    lock.stage_acquire(pipe, res.settings.sync_job_timeout_seconds + 10)
    employee.stage_look_up(pipe, user_id)
    acquired, remaining, *looked_up = await pipe.execute()
    wait = lock.read_acquired((acquired, remaining))
    if not wait:
        employee.keep_look_up(user_id, looked_up)
    return wait


DeferBy = Callable[[float], Awaitable[JobResult]]


async def _look_first(
    res: Resources, tenant: str, user_id: str
) -> tuple[int | None, Pause | None, frozenset[Reason]]:
    """What a job looks at before it syncs, in one round trip: the user's newest notice, the
    tenant's pause, and the credentials its status says are refused."""
    pipe = res.redis.pipeline(transaction=False)
    queue.stage_latest_generation(pipe, tenant, user_id)
    TenantPause(res.redis, tenant).stage_get(pipe)
    stage_refused_flags(res, pipe, tenant)
    latest, pause, refused = await pipe.execute()
    return queue.read_generation(latest), TenantPause.read(pause), read_refused_flags(refused)


async def _sync_held(
    res: Resources,
    tenant_ctx: TenantContext,
    employee: EmployeeSync,
    user_id: str,
    defer: DeferBy,
    refused: frozenset[Reason],
) -> tuple[JobResult, bool]:
    """The sync, the user's lock held; whether it did anything (then the cooldown applies)."""
    tenant, run_id = tenant_ctx.tenant, employee.run_id
    deadline = own_deadline(res.settings.sync_job_timeout_seconds)
    try:
        async with asyncio.timeout(deadline):
            outcome = await _sync_proving(res, tenant, employee, user_id, refused)
    except (LuccaThrottled, RateLimited) as exc:  # waiting as asked is no failure
        if run_id is not None:  # nor a stall of the run: the whole tenant waits
            await run_progress.note_progress(res.redis, tenant, run_id)
        return await defer(retry_delay(exc, 1)), False
    except (UpstreamError, TimeoutError) as exc:  # retryable errors, or a stalled answer
        if isinstance(exc, TimeoutError):
            exc = TimeoutError(f"no answer within {deadline:g} s")
        return await _failed(res, tenant, user_id, run_id, exc, defer), False
    await _follow_up(res, tenant_ctx, employee, outcome, user_id, run_id)
    JOBS.labels(Job.SYNC_USER.value, outcome.decision.action.value).inc()
    return Done(outcome.decision.action.value), True


async def _follow_up(
    res: Resources,
    tenant_ctx: TenantContext,
    employee: EmployeeSync,
    outcome: Outcome,
    user_id: str,
    run_id: str | None,
) -> None:
    """What one employee's sync leaves to do: contract ends to schedule, other employees to
    sync (reports of a manager, ...), and the webhook lag to observe."""
    tenant = tenant_ctx.tenant
    summary = employee.summary()
    await schedule_contract_ends(res, tenant_ctx, summary.contract_ends)
    follow_ups = set(summary.follow_ups) - {user_id}
    if follow_ups:
        await enqueue_user_syncs(res.redis, tenant, follow_ups, defer_seconds=0.0)
        await employee.follow_ups_kept()
    if outcome.written and run_id is not None:
        await observe_webhook_lag(res, tenant, run_id, employee.counted(run_id))


async def _sync_proving(
    res: Resources,
    tenant: str,
    employee: EmployeeSync,
    user_id: str,
    refused: frozenset[Reason],
) -> Outcome:
    """The employee's sync; one that succeeds while a credential is flagged refused (`refused`,
    read as the job began) proves it works again: whoever waited for it is applied now."""
    # A sync that got through ends the user's run of failures (with its records).
    cleared = partial(Failures.stage_clear, key=keys.failures(tenant, user_id))
    outcome = await employee.sync(user_id, also=cleared)
    if refused and outcome.decision.action not in (Action.ERROR, Action.HELD):
        await proven(res, tenant, refused)
    return outcome


async def _failed(
    res: Resources,
    tenant: str,
    user_id: str,
    run_id: str | None,
    exc: Exception,
    defer: DeferBy,
) -> JobResult:
    """Retried with backoff, until too many failures in a row."""
    failures = await res.failures.count(keys.failures(tenant, user_id))
    if failures > MAX_UPSTREAM_FAILURES:
        await _give_up(res, tenant, user_id, run_id, failures, exc)
        return Done("gave up")
    log.info("tenant=%s user=%s retry %s: %s", tenant, user_id, failures, exc)
    return await defer(retry_delay(exc, failures))


async def _give_up(
    res: Resources, tenant: str, user_id: str, run_id: str | None, failures: int, exc: Exception
) -> None:
    """Not retried for ever: recorded against the user; the next reconciliation tries again."""
    await res.failures.clear(keys.failures(tenant, user_id))
    reason = f"gave up after {failures - 1} failed tries: {exc}"
    decision = Decision(user_id, Action.ERROR, reason)
    await record_decision(
        res.records, res.runs, tenant, decision, run_id=run_id, written=False, error=reason
    )
    log.warning("tenant=%s user=%s %s", tenant, user_id, reason)


async def observe_webhook_lag(
    res: Resources, tenant: str, run_id: str, counted: CountAnswers | None = None
) -> None:
    """Receipt of the webhook -> this Elevo write, for the lag histogram (`counted`: the run
    as the write's records read it back, else read now)."""
    if counted is None:
        run = await res.runs.get(tenant, run_id)
        if run is None:
            return
        created_at, from_webhook = run.created_at, run.trigger.from_webhook
    else:
        created_at, from_webhook = counted.created_at, counted.from_webhook
    if not created_at or not from_webhook:
        return
    received = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    WEBHOOK_TO_ELEVO.observe(max(0.0, (datetime.now(UTC) - received).total_seconds()))


async def _defer(
    res: Resources,
    tenant: str,
    user_id: str,
    generation: int,
    run_id: str | None,
    job_try: int,
    delay: float,
) -> JobResult:
    """Retry later; a job out of tries hands over to a fresh one, so no change is dropped."""
    if job_try < SYNC_USER_MAX_TRIES - 1:
        return Defer(delay)
    await enqueue_user_syncs(res.redis, tenant, [user_id], run_id=run_id, defer_seconds=delay)
    log.warning(
        "tenant=%s user=%s gen=%s handed over after many tries", tenant, user_id, generation
    )
    return Done("handed over")

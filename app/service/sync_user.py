"""The per-user sync job's body: superseded, busy, throttled, retried, given up or handed over."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from redis.asyncio.client import Pipeline

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
from app.store import keys, run_progress
from app.store.budget import Priority
from app.store.failures import Failures
from app.store.locks import UserLock
from app.store.parked import Pause, TenantPause
from app.store.run_counts import CountAnswers

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
    tenant_ctx = await res.contexts.get(tenant)
    if tenant_ctx is None:
        return Done("unknown tenant")
    if tenant_ctx.disconnecting:  # its release gives the profiles back: no more writes
        return Done("tenant disconnecting")
    employee = _employee(res, tenant_ctx, run_id)
    lock = UserLock(res.redis, tenant, user_id)
    look = await _look_first(res, lock, employee, user_id, generation)
    if look.wait is None:  # a newer notice came: its job syncs the user
        if run_id is not None:
            await res.runs.count(tenant, run_id, user_id, "superseded")
        return Done("superseded")
    if look.pause is not None:
        if look.wait == 0:
            await lock.release(0.0)
        await keep_while_paused(res, tenant, user_id, run_id, look.pause)
        return Done("paused")
    defer = partial(_defer, res, tenant, user_id, generation, run_id, job_try)
    if look.wait:
        # The holder may finish long before its lock would expire: look again soon.
        return await defer(
            min(look.wait, res.settings.user_cooldown_seconds + random.uniform(0.05, 0.25))
        )
    synced = True  # unless told otherwise: a job cancelled mid-write may have written
    try:
        result, synced = await _sync_held(
            res, tenant_ctx, employee, user_id, lock, defer, look.refused
        )
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


@dataclass(frozen=True, slots=True)
class FirstLook:
    """What a job learns in its first round trip. `wait`: 0 when it holds the user's lock,
    else how long the holder keeps it; None when a newer notice came (the lock untried)."""

    wait: float | None
    pause: Pause | None
    refused: frozenset[Reason]


async def _look_first(
    res: Resources, lock: UserLock, employee: EmployeeSync, user_id: str, generation: int
) -> FirstLook:
    """One round trip before the sync: the user's lock, taken unless a newer notice came;
    the tenant's pause; the credentials its status says are refused; and what the sync reads
    first (read after the lock was taken: then they are the holder's)."""
    tenant = employee.tenant
    pipe = res.redis.pipeline(transaction=False)
    # Held past ARQ's timeout: a job cancelled mid-write still keeps the user to itself.
    lock.stage_acquire_current(pipe, res.settings.sync_job_timeout_seconds + 10, generation)
    TenantPause(res.redis, tenant).stage_get(pipe)
    stage_refused_flags(res, pipe, tenant)
    employee.stage_look_up(pipe, user_id)
    acquired, pause, refused, *looked_up = await pipe.execute()
    wait = lock.read_acquired_current(acquired)
    if wait == 0:
        employee.keep_look_up(user_id, looked_up)
    return FirstLook(
        wait=wait,
        pause=TenantPause.read(pause),
        refused=read_refused_flags(refused),
    )


DeferBy = Callable[[float], Awaitable[JobResult]]


async def _sync_held(
    res: Resources,
    tenant_ctx: TenantContext,
    employee: EmployeeSync,
    user_id: str,
    lock: UserLock,
    defer: DeferBy,
    refused: frozenset[Reason],
) -> tuple[JobResult, bool]:
    """The sync, the user's lock held; whether it did anything (then the cooldown applies)."""
    tenant, run_id = tenant_ctx.tenant, employee.run_id
    deadline = own_deadline(res.settings.sync_job_timeout_seconds)
    try:
        async with asyncio.timeout(deadline):
            outcome = await _sync_proving(res, tenant, employee, user_id, refused, lock)
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
    lock: UserLock,
) -> Outcome:
    """The employee's sync; one that succeeds while a credential is flagged refused (`refused`,
    read as the job began) proves it works again: whoever waited for it is applied now."""

    def last_writes(pipe: Pipeline) -> None:
        # A sync that got through ends the user's run of failures, and frees the user into
        # its cooldown, with its records: nothing after them touches this user.
        Failures.stage_clear(pipe, keys.failures(tenant, user_id))
        lock.stage_release(pipe, res.settings.user_cooldown_seconds)

    outcome = await employee.sync(user_id, also=last_writes)
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

"""The tenant-level reasons that block writes, and how each clears (sync-rules.md, "nothing
waits for ever"): a pause lifts on resume; a refused credential clears on a `PUT` of the tenant,
on a sync that succeeds after the refusal, or on a probe the minute's tick sends with backoff;
an employee held on one read by an absent skip field waits for a complete listing, which the
tick starts. Whatever waited is queued again as soon as its reason clears (waiting.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from redis.asyncio.client import Pipeline

from app.clients.errors import ElevoAuthError, LuccaAuthError, UpstreamError
from app.core.decision import Action, Decision
from app.service import audit
from app.service.context import TenantContext
from app.service.outcomes import record_decision
from app.service.pacing import PROBE_BASE_SECONDS, PROBE_CAP_SECONDS, flag_refused_key
from app.service.resources import Resources
from app.service.runs import CHANGES_RUN, FULL_RUN, start_run
from app.service.waiting import UNBLOCKED, Reason, Released, park, paused, release, waiting_text
from app.store.budget import Priority
from app.store.parked import ParkedUsers, Pause, ProbeBackoff, TenantPause
from app.store.records import Records
from app.store.run_model import Run, RunMode, RunState, Trigger, TriggerKind, utcnow_iso

log = logging.getLogger(__name__)

_FLAG = {Reason.LUCCA_KEY: "lucca_key_error", Reason.ELEVO_TOKEN: "elevo_token_error"}


# -- pause and resume -------------------------------------------------------------------------


async def pause_tenant(
    res: Resources, tenant: str, *, operator: str, reason: str | None
) -> dict[str, Any]:
    """Keep every notice, write nothing, until resumed; full runs and polls asked meanwhile
    start on resume. Pausing a paused tenant changes nothing."""
    pause = await TenantPause(res.redis, tenant).pause(operator, utcnow_iso(), reason)
    await audit.record(res, tenant, audit.AuditAction.PAUSE, by=operator, reason=reason)
    return {"tenant": tenant, "paused": True, "since": pause.at, "by": pause.by}


async def resume_tenant(res: Resources, tenant: str, *, operator: str) -> dict[str, Any]:
    """Lift the pause: every notice kept meanwhile is applied, and a full run (or a poll) asked
    meanwhile starts now. Resuming a tenant that is not paused starts nothing."""
    pause = await TenantPause(res.redis, tenant).resume()
    if pause is None:
        return {"tenant": tenant, "paused": False, "run": None, "runs": []}
    released = await release(res, tenant, Reason.PAUSED, trigger=Trigger(TriggerKind.RESUMED))
    runs = [released.run_id] if released.run_id else []
    resumed = Trigger(TriggerKind.RESUMED)
    if pause.pending_full or released.overflowed:
        runs.append(await start_run(res, tenant, FULL_RUN, trigger=resumed))
    elif pause.pending_changes:
        runs.append(await start_run(res, tenant, CHANGES_RUN, trigger=resumed))
    last_pause = {"paused_at": pause.at, "paused_by": pause.by, "resumed_at": utcnow_iso()}
    await res.records.note(
        tenant, last_pause=orjson.dumps(last_pause | {"resumed_by": operator}).decode()
    )
    await audit.record(
        res, tenant, audit.AuditAction.RESUME, by=operator, kept=len(released.user_ids)
    )
    return {"tenant": tenant, "paused": False, "run": released.run_id, "runs": runs}


async def hold_while_paused(res: Resources, tenant: str, *, full: bool) -> str | None:
    """A full run or a poll asked while the tenant is paused starts on resume: why it waits,
    or None when the tenant is not paused."""
    if not await TenantPause(res.redis, tenant).note_pending(full=full):
        return None
    return "waiting: the tenant is paused; a run of this mode starts on resume"


# -- refused credentials ----------------------------------------------------------------------


async def credential_works(
    res: Resources, tenant: str, reason: Reason, *, config_changed: bool = False
) -> Released:
    """Lucca took the key, or Elevo the token, again (or a new one came: `config_changed`):
    lift the flag, queue whoever waited."""
    await res.records.note(tenant, **{_FLAG[reason]: ""})
    await ProbeBackoff(res.redis, tenant, reason.value).reset()
    released = await release(res, tenant, reason, trigger=UNBLOCKED, config_changed=config_changed)
    revoked = reason is Reason.LUCCA_KEY and await res.budget.clear_revoked(tenant)
    stopped = await ParkedUsers(res.redis, tenant).take_runs(reason.value)
    if revoked or released.overflowed or "full" in stopped:
        # Department renames and polls failed meanwhile, and are no employee's: catch up.
        trigger = Trigger(TriggerKind.KEY_REPLACED if revoked else TriggerKind.UNBLOCKED)
        await start_run(res, tenant, FULL_RUN, trigger=trigger)
    elif "changes" in stopped:
        await start_run(res, tenant, CHANGES_RUN, trigger=UNBLOCKED)
    return released


async def credentials_replaced(res: Resources, tenant: str) -> None:
    """A `PUT` of the tenant: its credentials prove themselves afresh, and what waited for
    them is applied (a wrong one parks it again at the first refusal)."""
    for reason in _FLAG:
        await credential_works(res, tenant, reason, config_changed=True)


def refusal_reason(exc: UpstreamError) -> Reason | None:
    """The credential a permanent refusal is about, if any."""
    if isinstance(exc, LuccaAuthError):
        return Reason.LUCCA_KEY
    if isinstance(exc, ElevoAuthError):
        return Reason.ELEVO_TOKEN
    return None


async def wait_for_credential(
    res: Resources,
    tenant: str,
    user_id: str,
    exc: UpstreamError,
    *,
    run_id: str | None,
    dry_run: bool,
) -> Decision | None:
    """A permanent refusal of one of the tenant's credentials: the tenant is flagged, the
    employee waits for it (parked; a plan only says so); None for any other refusal."""
    reason = refusal_reason(exc)
    if reason is None:
        return None
    if not dry_run:
        # Parked first: a PUT that clears the flag in between then releases it, or leaves the
        # flag that the probe clears; never an employee parked with no flag to clear.
        await park(res, tenant, [user_id], reason, run_id=run_id)
    # A dry run flags too: the refusal is the credential's, and the flag spares Lucca the
    # calls every other path would make with a key it refuses.
    await refused(res, tenant, reason, exc)
    return Decision(user_id, Action.HELD, waiting_text(reason, str(exc)))


async def run_waits_for_credential(res: Resources, tenant: str, run: Run, exc: Exception) -> bool:
    """A step of a full run, a poll or a department met a refused credential: the tenant is
    flagged, the run ends `held` saying why, and a run of its mode (a full run for a
    department) starts once the credential works. False for any other failure."""
    if not isinstance(exc, UpstreamError):
        return False
    reason = refusal_reason(exc)
    if reason is None or run.dry_run:
        return False
    mode = "changes" if run.mode is RunMode.CHANGES else "full"
    await ParkedUsers(res.redis, tenant).park_run(reason.value, mode)
    await refused(res, tenant, reason, exc)
    waiting = waiting_text(reason, f"a {mode} run starts then: {exc}")
    await res.runs.set_state(tenant, run.id, RunState.HELD, waiting=waiting)
    await res.full_run_lock.release(tenant, run.id)
    return True


async def refused(res: Resources, tenant: str, reason: Reason, exc: UpstreamError) -> None:
    """Lucca refused the key, or Elevo the token: flag the tenant (the probe starts); for
    Lucca, stop calling it with that key for a while (a call not made for the flag neither
    repeats nor prolongs it)."""
    if isinstance(exc, LuccaAuthError):
        await flag_refused_key(res, tenant, exc)
    else:
        await res.records.note(tenant, **{_FLAG[reason]: str(exc)})
        await ProbeBackoff(res.redis, tenant, reason.value).arm(PROBE_BASE_SECONDS)


async def refused_flags(res: Resources, tenant: str) -> frozenset[Reason]:
    """The credentials the tenant's status says are refused now."""
    return _refused(await res.records.flags(tenant, *_FLAG.values()))


def stage_refused_flags(res: Resources, pipe: Pipeline, tenant: str) -> None:
    """`refused_flags` in a pipeline; `read_refused_flags` reads its answer."""
    res.records.stage_flags(pipe, tenant, *_FLAG.values())


def read_refused_flags(answer: Sequence[bytes | None]) -> frozenset[Reason]:
    return _refused(Records.read_flags(answer))


def _refused(flags: Sequence[str]) -> frozenset[Reason]:
    return frozenset(reason for reason, flag in zip(_FLAG, flags, strict=True) if flag)


# -- the minute's tick --------------------------------------------------------------------------


async def probe_tenant(res: Resources, tenant_ctx: TenantContext) -> None:
    """Retry each refused credential with backoff, and start the complete listing an employee
    held by an absent skip field waits for; never fails the tick."""
    tenant = tenant_ctx.tenant
    try:
        for reason in await refused_flags(res, tenant):
            if await _due(res, tenant, reason) and await _probe(res, tenant_ctx, reason):
                await credential_works(res, tenant, reason)
        await _check_skip_field(res, tenant)
    except Exception:  # one tenant's trouble must not stop the tick for the others
        log.exception("tenant=%s probe failed", tenant)


async def _due(res: Resources, tenant: str, reason: Reason) -> bool:
    backoff = ProbeBackoff(res.redis, tenant, reason.value)
    return await backoff.due(PROBE_BASE_SECONDS, PROBE_CAP_SECONDS)


async def _probe(res: Resources, tenant_ctx: TenantContext, reason: Reason) -> bool:
    """One cheap request with the refused credential: True when it is taken now."""
    tenant = tenant_ctx.tenant
    try:
        if reason is Reason.ELEVO_TOKEN:
            await tenant_ctx.elevo.list_page(start_index=1, count=1)
            return True
        # Straight to the budget: the key's flag would refuse the very request that tests it.
        wait = await res.budget.take(
            tenant_ctx.lucca.base_url,
            tenant_ctx.config.lucca_requests_per_minute,
            priority=Priority.BACKGROUND,
            tenant=tenant,
        )
        if wait > 0:
            return False  # the budget comes first; the next probe tries
        await tenant_ctx.lucca.list_page(0, 1)
        return True
    except (ElevoAuthError, LuccaAuthError) as exc:
        await refused(res, tenant, reason, exc)
        log.info("tenant=%s probe: %s still refused", tenant, reason.value)
    except UpstreamError as exc:  # unreachable says nothing about the credential
        log.info("tenant=%s probe of %s inconclusive: %s", tenant, reason.value, exc)
    return False


async def _check_skip_field(res: Resources, tenant: str) -> None:
    """Someone held on one read waits for a complete listing: start one (a full run), with
    backoff. Under a permission loss they wait for the flag to lift instead (a full run that
    sees the field again, the nightly one included, or an operator accepting the loss)."""
    counts = await ParkedUsers(res.redis, tenant).counts()
    if not counts.get(Reason.SKIP_FIELD.value, (0, None))[0]:
        return
    if (await res.records.flags(tenant, "permission_loss"))[0]:
        return
    if await _due(res, tenant, Reason.SKIP_FIELD):
        await start_run(res, tenant, FULL_RUN, trigger=Trigger(TriggerKind.SKIP_FIELD_CHECK))


# -- what a per-user job asks -----------------------------------------------------------------


async def kept_while_paused(res: Resources, tenant: str, user_id: str, run_id: str | None) -> bool:
    """A paused tenant keeps the notice (parked, its history says why) and applies it on resume;
    False when the tenant is not paused."""
    pause = await paused(res, tenant)
    if pause is None:
        return False
    await keep_while_paused(res, tenant, user_id, run_id, pause)
    return True


async def keep_while_paused(
    res: Resources, tenant: str, user_id: str, run_id: str | None, pause: Pause
) -> None:
    """`kept_while_paused` for a caller that read the pause itself."""
    await park(res, tenant, [user_id], Reason.PAUSED, run_id=run_id)
    why = waiting_text(Reason.PAUSED, f"by {pause.by} since {pause.at}")
    held = Decision(user_id, Action.HELD, why)
    await record_decision(res.records, res.runs, tenant, held, run_id=run_id, written=False)
    if await paused(res, tenant) is None:  # resumed meanwhile, maybe before the park: release
        await release(res, tenant, Reason.PAUSED, trigger=Trigger(TriggerKind.RESUMED))


async def proven(res: Resources, tenant: str, flagged: frozenset[Reason]) -> None:
    """A sync read Lucca and Elevo without a refusal while the status said one of them refused:
    the credential works again, and whoever waited for it is applied now."""
    for reason in flagged:
        await credential_works(res, tenant, reason)

"""A full reconciliation's last step: confirm the vanished by id, finish the follow-ups, weigh
the suspensions against the safety guard, then suspend or hold.

Resumable: its Lucca reads by id are kept in the run and the users it has synced are noted
per chunk of 500 (app/store/progress.py, RunSets "checked" and "applied"), so a finish that
meets a spent budget halfway resumes there; and a finish with much to do hands over to a next
finish job every FINISH_SLICE_SECONDS, far within a step's timeout. One employee's passing
Elevo error is retried a few times and then recorded against that employee (the next run
tries again), never failing the finish.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from app.core.decision import Action, Decision
from app.core.tenant import GuardConfig
from app.service import held_runs
from app.service.batcher import MAX_IDS_PER_REQUEST
from app.service.context import TenantContext
from app.service.employee import EmployeeSync
from app.service.outcomes import record_decision
from app.service.reconcile_sync import (
    RunOptions,
    fetch_ids,
    merged,
    remember_pending,
    slice_employee,
    sync_or_record,
)
from app.service.resources import Resources
from app.service.skip_field import hold_for_permission_loss, is_permission_loss, remember_listing
from app.store.links import ProfileLinks
from app.store.progress import RunReads
from app.store.run_model import RunState
from app.store.snapshot import RunSets

# A finish job hands over to the next after this long (a third of steps.RECONCILE_TIMEOUT).
FINISH_SLICE_SECONDS = 20.0
# Follow-ups of follow-ups (a chain of managers created at the end) settle within a few passes;
# what is left is picked up by the reports' own wait (keys.awaiting_manager) or the next run.
FINISH_PASSES = 3


def guard_holds(
    suspensions: int, active_managed: int, guard: GuardConfig, lucca_empty: bool
) -> bool:
    """The safety guard (sync-rules.md): hold on an empty Lucca, or on too many suspensions."""
    if suspensions == 0:
        return False
    if lucca_empty:
        return True
    too_many_share = suspensions > guard.max_suspend_ratio * active_managed
    return too_many_share and suspensions > guard.max_suspend_count


async def _follow_ups_due(res: Resources, tenant: str, sets: RunSets) -> set[str]:
    """The users whose manager got a profile after they were synced in this run.

    A manager who still has none (excluded, left, gone, in conflict) changes nothing for them:
    they already hold the empty manager field, and re-reading them would cost Lucca requests.
    """
    waiting = await sets.follow_ups()
    managers = sorted(set(waiting.values()))
    if not managers:
        return set()
    linked = await ProfileLinks(res.redis, tenant).profile_ids(managers)
    has_profile = {m for m, pid in zip(managers, linked, strict=True) if pid is not None}
    return {user for user, manager in waiting.items() if manager in has_profile}


class TimeSlice:
    """The time one finish job may take before it hands over to the next: a finish that
    syncs many users (thousands of follow-ups, a mass departure) stays far within a step's
    timeout. Each slice does at least one chunk, so that every job makes progress."""

    def __init__(self, seconds: float) -> None:
        self._deadline = time.monotonic() + seconds
        self._worked = False

    def spent(self) -> bool:
        return self._worked and time.monotonic() > self._deadline

    def worked(self) -> None:
        self._worked = True


async def reconcile_finish(
    res: Resources, tenant_ctx: TenantContext, options: RunOptions, time_slice: TimeSlice
) -> str | None:
    """Confirm the vanished, finish the follow-ups, then suspend or hold. Returns the state,
    or None when the slice is spent: the next finish job goes on from there."""
    tenant = tenant_ctx.tenant
    sets = RunSets(res.redis, tenant, options.run_id)
    run = await res.runs.get(tenant, options.run_id)
    listed, shown = (run.lucca_users, run.skip_field_shown) if run else (0, 0)
    undecided = await sets.members("undecided")
    if await is_permission_loss(res, tenant, listed=listed, shown=shown):
        return await hold_for_permission_loss(
            res, tenant_ctx, options.run_id, undecided, dry_run=options.dry_run
        )
    if not options.dry_run:
        await remember_listing(res, tenant_ctx, listed=listed, shown=shown, loss=False)
    seen = await sets.members("seen")
    managed = await sets.members("managed")
    follow = await _follow_ups_due(res, tenant, sets)
    follow |= await sets.members("retry")
    # A listing cut short must not suspend anyone: only a fetch by id confirms "gone".
    to_check = (managed - seen) | follow | undecided
    checking = _Checking(res, tenant_ctx, options, sets, skip_field_decided=shown > 0)
    if not await checking.run(to_check, time_slice):
        return None
    return await _weigh_suspensions(res, tenant_ctx, options, sets, time_slice)


@dataclass(frozen=True, slots=True)
class _Checking:
    res: Resources
    tenant_ctx: TenantContext
    options: RunOptions
    sets: RunSets
    skip_field_decided: bool

    async def run(self, to_check: set[str], time_slice: TimeSlice) -> bool:
        """Check these users by id, 500 at a time, and the follow-ups that creates; False
        when the slice is spent first. Who is checked is noted per chunk ("checked"), so a
        later job (or a try after a spent budget) goes on with the others."""
        checked = await self.sets.members("checked")
        to_check = to_check - checked
        for _ in range(FINISH_PASSES):
            if not to_check:
                break
            follow_ups: set[str] = set()
            ids = sorted(to_check, key=int)
            for start in range(0, len(ids), MAX_IDS_PER_REQUEST):
                if time_slice.spent():
                    return False
                chunk = ids[start : start + MAX_IDS_PER_REQUEST]
                employee = await _check(
                    self.res,
                    self.tenant_ctx,
                    self.options,
                    chunk,
                    skip_field_decided=self.skip_field_decided,
                )
                await remember_pending(self.sets, employee)
                await self.sets.mark("checked", chunk)
                time_slice.worked()
                follow_ups |= set(employee.summary().follow_ups)
            checked |= to_check
            # A manager created in this pass has reports that waited for it: they go next.
            to_check = follow_ups - checked
        return True


async def _check(
    res: Resources,
    tenant_ctx: TenantContext,
    options: RunOptions,
    user_ids: list[str],
    *,
    skip_field_decided: bool = False,
) -> EmployeeSync:
    """Sync these users after a fetch by id; their managers ride along in the same fetch."""
    batch, mark = await fetch_ids(res, tenant_ctx, options.run_id, user_ids)
    managers = {u.manager_id for u in batch.users.values() if u.manager_id} - set(user_ids)
    if managers:
        ordered = sorted(managers, key=int)
        bosses, boss_mark = await fetch_ids(res, tenant_ctx, options.run_id, ordered)
        batch, mark = merged(batch, bosses), min(mark, boss_mark)
    # The vanished are looked up by their externalId: Lucca no longer has them.
    users_at_hand = sorted(set(user_ids) | set(batch.users), key=int)
    sets = RunSets(res.redis, tenant_ctx.tenant, options.run_id)
    snapshot = await sets.snapshot_for(batch, users_at_hand)
    employee = slice_employee(
        res,
        tenant_ctx,
        options,
        fetch_managers=True,
        snapshot=snapshot,
        skip_field_decided=skip_field_decided,
        read_mark=mark,
    )
    await employee.preload_skip_memory(batch.users)
    await sync_or_record(employee, user_ids, batch)
    return employee


async def _weigh_suspensions(
    res: Resources,
    tenant_ctx: TenantContext,
    options: RunOptions,
    sets: RunSets,
    time_slice: TimeSlice,
) -> str | None:
    """Suspend what is due, unless the guard holds: then only what a confirmation approved.
    None when the slice is spent first (the suspensions applied are noted, "applied")."""
    tenant, run_id = tenant_ctx.tenant, options.run_id
    pending = await sets.suspensions()
    run = await res.runs.get(tenant, run_id)
    lucca_empty = (run.lucca_users if run else 0) == 0
    active = run.active_managed if run else 0
    guard = tenant_ctx.config.guard
    approved = await held_runs.approved_users(res, tenant, options.confirms)
    if pending and (approved or guard_holds(len(pending), active, guard, lucca_empty)):
        # What is held, or approved, is what is due now: a profile suspended meanwhile (a
        # contract's end, a webhook) or back in Lucca leaves the list.
        due = await _still_due(res, tenant_ctx, options, sets, sorted(pending, key=int), time_slice)
        if due is None:
            return None
        pending = due
    to_hold = {user: why for user, why in pending.items() if user not in approved}
    holds = guard_holds(len(to_hold), active, guard, lucca_empty)
    to_suspend = set(pending) - set(to_hold) if holds else set(pending)
    if not await _suspend(res, tenant_ctx, options, sets, to_suspend, time_slice):
        return None
    held = await _hold(res, tenant, options, to_hold) if holds else None
    await RunReads(res.redis, tenant, run_id).forget()
    await res.runs.set_state(
        tenant, run_id, RunState.DONE if held is None else RunState.HELD, held=held
    )
    if not options.dry_run:
        await held_runs.note_full_run_end(res, tenant, run_id, held)
        if run is not None and run.lucca_unreadable == 0:
            await res.records.note(tenant, lucca_unreadable="")  # Lucca lists none any more
    return "done" if held is None else "held"


async def _suspend(
    res: Resources,
    tenant_ctx: TenantContext,
    options: RunOptions,
    sets: RunSets,
    to_suspend: set[str],
    time_slice: TimeSlice,
) -> bool:
    """Apply the suspensions, 500 at a time; False when the slice is spent first."""
    remaining = sorted(to_suspend - await sets.members("applied"), key=int)
    for start in range(0, len(remaining), MAX_IDS_PER_REQUEST):
        if time_slice.spent():
            return False
        chunk = remaining[start : start + MAX_IDS_PER_REQUEST]
        # Profiles are read afresh, not from the snapshot: a retried step must see its own
        # earlier writes.
        batch, mark = await fetch_ids(res, tenant_ctx, options.run_id, chunk)
        employee = slice_employee(
            res, tenant_ctx, options, fetch_managers=True, defer_suspensions=False, read_mark=mark
        )
        await sync_or_record(employee, chunk, batch)
        await sets.mark("applied", chunk)
        time_slice.worked()
    return True


async def _still_due(
    res: Resources,
    tenant_ctx: TenantContext,
    options: RunOptions,
    sets: RunSets,
    user_ids: list[str],
    time_slice: TimeSlice,
) -> dict[str, str] | None:
    """Decide these users again, on Lucca and Elevo as they are now, 500 at a time; the
    suspensions still due (user -> reason), or None when the slice is spent first. Other
    outcomes are made and recorded."""
    done = await sets.members("redecided")
    remaining = [user_id for user_id in user_ids if user_id not in done]
    for start in range(0, len(remaining), MAX_IDS_PER_REQUEST):
        if time_slice.spent():
            return None
        chunk = remaining[start : start + MAX_IDS_PER_REQUEST]
        batch, mark = await fetch_ids(res, tenant_ctx, options.run_id, chunk)
        employee = slice_employee(res, tenant_ctx, options, fetch_managers=True, read_mark=mark)
        await sync_or_record(employee, chunk, batch)
        deferred = employee.summary().deferred
        await sets.keep_due({user: decision.reason for user, decision in deferred.items()})
        await sets.mark("redecided", chunk)
        time_slice.worked()
    return await sets.still_due()


async def _hold(
    res: Resources, tenant: str, options: RunOptions, to_hold: Mapping[str, str]
) -> list[str]:
    """Record each held suspension; the list the run holds, for an operator to confirm."""
    for user_id, reason in sorted(to_hold.items()):
        await record_decision(
            res.records,
            res.runs,
            tenant,
            Decision(user_id, Action.HELD, f"held by the safety guard: {reason}"),
            run_id=options.run_id,
            written=False,
            dry_run=options.dry_run,
        )
    return sorted(to_hold, key=int)

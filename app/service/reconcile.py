"""Full reconciliation as a chain of short jobs: snapshot Elevo, walk Lucca pages, finish.

ARQ keeps a killed job's in-progress key for the largest timeout of all functions, so no
step may be long: each job handles one page (1000 Lucca users) and queues the next.

    reconcile_snapshot(start)  managed Elevo profiles -> Redis, page by page
    reconcile_page(offset)     one Lucca page: decide and write; suspensions wait
    reconcile_finish()         confirm the vanished by id, weigh suspensions, apply or hold
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.clients.errors import UpstreamError
from app.clients.lucca import LuccaBatch
from app.core.decision import Action, Decision
from app.core.errors import InvalidLuccaUser
from app.core.rules import Standing, standing_of
from app.core.tenant import GuardConfig
from app.service import held_runs
from app.service.batcher import MAX_IDS_PER_REQUEST, LuccaThrottled
from app.service.context import TenantContext
from app.service.employee import EmployeeSync
from app.service.listing import attributed, listed_ids, note_unreadable, unreadable_items
from app.service.outcomes import record_decision
from app.service.pacing import take_budget
from app.service.resources import Resources
from app.service.schedule import schedule_contract_ends
from app.service.skip_field import (
    field_expected,
    hold_for_permission_loss,
    is_permission_loss,
    remember_listing,
)
from app.store.budget import Priority
from app.store.links import ProfileLinks
from app.store.runs import Run, RunState
from app.store.snapshot import RunSets, Snapshot

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
SNAPSHOT_PAGE = 500
WRITE_CONCURRENCY = 16
# Follow-ups of follow-ups (a chain of managers created at the end) settle within a few passes;
# what is left is picked up by the reports' own wait (keys.awaiting_manager) or the next run.
FINISH_PASSES = 3


@dataclass(frozen=True, slots=True)
class RunOptions:
    run_id: str
    dry_run: bool
    confirms: str | None = None  # a confirmation: the held run whose list it may suspend

    @classmethod
    def of(cls, run: Run) -> RunOptions:
        return cls(run_id=run.id, dry_run=run.dry_run, confirms=run.confirms)


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


async def snapshot_page(
    res: Resources, tenant_ctx: TenantContext, run_id: str, start: int
) -> int | None:
    """Store one page of every Elevo profile; the next start index, or None when done.

    Every profile, not only the managed ones, with indexes by externalId and by userName:
    then a page can decide without asking Elevo who holds what.
    """
    page = await tenant_ctx.elevo.list_page(start_index=start, count=SNAPSHOT_PAGE)
    await RunSets(res.redis, tenant_ctx.tenant, run_id).store_profiles(page.profiles)
    following = start + len(page.profiles)
    if not page.profiles or following > page.total:
        return None
    return following


def manager_waves(user_ids: Iterable[str], batch: LuccaBatch) -> list[list[str]]:
    """The users in waves, managers before the people they manage (within this batch).

    A manager outside the batch, or a cycle, does not hold anyone back.
    """
    depth: dict[str, int] = {}
    for user_id in user_ids:
        chain: list[str] = []
        current: str | None = user_id
        while current is not None and current not in depth and current not in chain:
            chain.append(current)
            user = batch.users.get(current)
            manager = user.manager_id if user is not None else None
            current = manager if manager in batch.users else None
        base = depth[current] + 1 if current is not None and current in depth else 0
        for offset, member in enumerate(reversed(chain)):
            depth[member] = base + offset
    waves: dict[int, list[str]] = {}
    for user_id in user_ids:
        waves.setdefault(depth[user_id], []).append(user_id)
    return [waves[level] for level in sorted(waves)]


def user_name_owners(batch: LuccaBatch, skip_field: str, today: date) -> dict[str, str]:
    """For a userName several active Lucca users share, the lowest id owns it."""
    owners: dict[str, str] = {}
    for user_id in sorted(batch.users, key=int):
        user = batch.users[user_id]
        try:
            active = standing_of(user, skip_field=skip_field, today=today) is Standing.ACTIVE
        except InvalidLuccaUser:
            continue
        if active and user.user_name:
            owners.setdefault(user.user_name.casefold(), user_id)
    return owners


async def _sync_many(
    employee: EmployeeSync,
    user_ids: Sequence[str],
    batch: LuccaBatch,
    *,
    retry_later: set[str] | None = None,
) -> None:
    """Sync users in bounded concurrency, managers first.

    With `retry_later`, a user whose sync meets a passing error (a 5xx, a timeout, a reset
    connection) is put there instead of failing the whole step: one flaky answer must not
    make a thousand users be synced again.
    """
    gate = asyncio.Semaphore(WRITE_CONCURRENCY)

    async def one(user_id: str) -> None:
        async with gate:
            try:
                await employee.sync(user_id, batch)
            except (UpstreamError, LuccaThrottled) as exc:
                if retry_later is None:
                    raise
                log.info(
                    "tenant=%s user=%s left for the run's end: %s", employee.tenant, user_id, exc
                )
                retry_later.add(user_id)

    for wave in manager_waves(user_ids, batch):
        await asyncio.gather(*(one(uid) for uid in wave))


async def _remember_pending(sets: RunSets, employee: EmployeeSync) -> None:
    summary = employee.summary()
    suspensions = {user_id: d.reason for user_id, d in summary.deferred.items()}
    await sets.keep_pending(suspensions, summary.follow_ups)


def _employee(
    res: Resources,
    tenant_ctx: TenantContext,
    options: RunOptions,
    *,
    fetch_managers: bool,
    defer_suspensions: bool = True,
    snapshot: Snapshot | None = None,
    batch: LuccaBatch | None = None,
    skip_field_decided: bool = False,
) -> EmployeeSync:
    async def fetch(user_id: str) -> LuccaBatch:
        return await res.batcher.fetch(
            tenant_ctx.tenant,
            tenant_ctx.lucca,
            tenant_ctx.config.lucca_requests_per_minute,
            user_id,
            priority=Priority.BACKGROUND,
        )

    owners = None
    if batch is not None:
        owners = user_name_owners(batch, tenant_ctx.config.skip_field, tenant_ctx.today())
    return EmployeeSync(
        tenant_ctx,
        res,
        fetch,
        run_id=options.run_id,
        dry_run=options.dry_run,
        defer_suspensions=defer_suspensions,
        fetch_managers=fetch_managers,
        snapshot=snapshot,
        user_name_owners=owners,
        skip_field_decided=skip_field_decided,
    )


async def reconcile_page(
    res: Resources, tenant_ctx: TenantContext, options: RunOptions, offset: int
) -> bool:
    """Sync one Lucca page; True when more pages follow."""
    await take_budget(res, tenant_ctx, priority=Priority.BACKGROUND)
    batch = await tenant_ctx.lucca.list_page(offset, PAGE_SIZE)
    tenant = tenant_ctx.tenant
    sets = RunSets(res.redis, tenant, options.run_id)
    seen = listed_ids(batch)
    unreadable = unreadable_items(batch)
    shown = await sets.mark_seen(
        seen, batch.item_count, len(batch.skip_field_shown), unreadable=len(unreadable)
    )
    if not options.dry_run:
        await note_unreadable(res, tenant, unreadable, run_id=options.run_id)
    more = batch.item_count >= PAGE_SIZE
    if not shown and await field_expected(res, tenant):
        # Nobody so far shows the skip field that the last listing showed: maybe the key lost
        # it. Only the complete listing can tell, so the finish decides these users.
        await sets.keep_undecided(seen)
        return more
    snapshot = await sets.snapshot_for(batch, list(batch.users))
    employee = _employee(
        res,
        tenant_ctx,
        options,
        fetch_managers=False,
        snapshot=snapshot,
        batch=batch,
        skip_field_decided=shown > 0,
    )
    await employee.preload_skip_memory(batch.users)
    retry_later: set[str] = set()
    await _sync_many(employee, seen, batch, retry_later=retry_later)
    await _remember_pending(sets, employee)
    if retry_later:
        await sets.retry_later(retry_later)
    if not options.dry_run:
        await schedule_contract_ends(res, tenant_ctx, employee.summary().contract_ends)
    return more


async def _fetch_ids(
    res: Resources, tenant_ctx: TenantContext, user_ids: Sequence[str]
) -> LuccaBatch:
    """One by-id request per 500 users, merged."""
    users: dict[str, Any] = {}
    invalid: dict[str, str] = {}
    shown: set[str] = set()
    count = 0
    for start in range(0, len(user_ids), MAX_IDS_PER_REQUEST):
        await take_budget(res, tenant_ctx, priority=Priority.BACKGROUND)
        asked = user_ids[start : start + MAX_IDS_PER_REQUEST]
        part = attributed(await tenant_ctx.lucca.fetch_by_ids(asked), asked)
        users.update(part.users)
        invalid.update(part.invalid)
        shown |= part.skip_field_shown
        count += part.item_count
    return LuccaBatch(
        users=users, invalid=invalid, item_count=count, skip_field_shown=frozenset(shown)
    )


def _merged(first: LuccaBatch, second: LuccaBatch) -> LuccaBatch:
    return LuccaBatch(
        users={**first.users, **second.users},
        invalid={**first.invalid, **second.invalid},
        item_count=first.item_count + second.item_count,
        skip_field_shown=first.skip_field_shown | second.skip_field_shown,
    )


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


async def reconcile_finish(res: Resources, tenant_ctx: TenantContext, options: RunOptions) -> str:
    """Confirm the vanished, finish the follow-ups, then suspend or hold. Returns the state."""
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
    checked: set[str] = set()
    for _ in range(FINISH_PASSES):
        if not to_check:
            break
        ids = sorted(to_check, key=int)
        employee = await _check(res, tenant_ctx, options, ids, skip_field_decided=shown > 0)
        await _remember_pending(sets, employee)
        checked |= to_check
        # A manager created in this pass has reports that waited for it: they go next.
        to_check = set(employee.summary().follow_ups) - checked
    return await _weigh_suspensions(res, tenant_ctx, options, sets)


async def _check(
    res: Resources,
    tenant_ctx: TenantContext,
    options: RunOptions,
    user_ids: list[str],
    *,
    skip_field_decided: bool = False,
) -> EmployeeSync:
    """Sync these users after a fetch by id; their managers ride along in the same fetch."""
    batch = await _fetch_ids(res, tenant_ctx, user_ids)
    managers = {u.manager_id for u in batch.users.values() if u.manager_id} - set(user_ids)
    if managers:
        batch = _merged(batch, await _fetch_ids(res, tenant_ctx, sorted(managers, key=int)))
    # The vanished are looked up by their externalId: Lucca no longer has them.
    users_at_hand = sorted(set(user_ids) | set(batch.users), key=int)
    sets = RunSets(res.redis, tenant_ctx.tenant, options.run_id)
    snapshot = await sets.snapshot_for(batch, users_at_hand)
    employee = _employee(
        res,
        tenant_ctx,
        options,
        fetch_managers=True,
        snapshot=snapshot,
        skip_field_decided=skip_field_decided,
    )
    await employee.preload_skip_memory(batch.users)
    await _sync_many(employee, user_ids, batch)
    return employee


async def _weigh_suspensions(
    res: Resources, tenant_ctx: TenantContext, options: RunOptions, sets: RunSets
) -> str:
    """Suspend what is due, unless the guard holds: then only what a confirmation approved."""
    tenant, run_id = tenant_ctx.tenant, options.run_id
    pending = await sets.suspensions()
    run = await res.runs.get(tenant, run_id)
    lucca_empty = (run.lucca_users if run else 0) == 0
    active = run.active_managed if run else 0
    guard = tenant_ctx.config.guard
    approved = await held_runs.approved_users(res, tenant, options.confirms)
    batch: LuccaBatch | None = None
    if pending and (approved or guard_holds(len(pending), active, guard, lucca_empty)):
        # What is held, or approved, is what is due now: a profile suspended meanwhile (a
        # contract's end, a webhook) or back in Lucca leaves the list.
        pending, batch = await _still_due(res, tenant_ctx, options, sorted(pending, key=int))
    to_hold = {user: why for user, why in pending.items() if user not in approved}
    holds = guard_holds(len(to_hold), active, guard, lucca_empty)
    to_suspend = sorted(set(pending) - set(to_hold) if holds else set(pending), key=int)
    if to_suspend:
        # Profiles are read afresh, not from the snapshot: a retried step must see its own
        # earlier writes.
        batch = batch or await _fetch_ids(res, tenant_ctx, to_suspend)
        employee = _employee(res, tenant_ctx, options, fetch_managers=True, defer_suspensions=False)
        await _sync_many(employee, to_suspend, batch)
    held = await _hold(res, tenant, options, to_hold) if holds else None
    await res.runs.set_state(
        tenant, run_id, RunState.DONE if held is None else RunState.HELD, held=held
    )
    if not options.dry_run:
        await held_runs.note_full_run_end(res, tenant, run_id, held)
        if run is not None and run.lucca_unreadable == 0:
            await res.records.note(tenant, lucca_unreadable="")  # Lucca lists none any more
    return "done" if held is None else "held"


async def _still_due(
    res: Resources, tenant_ctx: TenantContext, options: RunOptions, user_ids: list[str]
) -> tuple[dict[str, str], LuccaBatch]:
    """Decide these users again, on Lucca and Elevo as they are now; the suspensions still
    due (user -> reason), and the Lucca batch read. Other outcomes are made and recorded."""
    batch = await _fetch_ids(res, tenant_ctx, user_ids)
    employee = _employee(res, tenant_ctx, options, fetch_managers=True)
    await _sync_many(employee, user_ids, batch)
    due = {user: decision.reason for user, decision in employee.summary().deferred.items()}
    return due, batch


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

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

import orjson
from arq.connections import ArqRedis

from app.core.decision import Action, Decision
from app.core.profile import profile_from_dict, profile_to_dict
from app.core.rules import Standing, standing_of
from app.core.tenant import GuardConfig
from app.errors import InvalidLuccaUser, UpstreamError
from app.lucca import LuccaBatch
from app.resources import Resources
from app.sync import keys
from app.sync.batcher import MAX_IDS_PER_REQUEST, LuccaThrottled
from app.sync.context import TenantContext
from app.sync.employee import EmployeeSync, Snapshot
from app.sync.records import utcnow_iso
from app.sync.schedule import schedule_contract_ends

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
SNAPSHOT_PAGE = 500
WRITE_CONCURRENCY = 16
RUN_KEY_TTL = 24 * 3600
# Follow-ups of follow-ups (a chain of managers created at the end) settle within a few passes;
# what is left is picked up by the reports' own wait (keys.awaiting_manager) or the next run.
FINISH_PASSES = 3


def _run_key(tenant: str, run_id: str, part: str) -> str:
    return f"{keys.run(tenant, run_id)}:{part}"


@dataclass(frozen=True, slots=True)
class RunOptions:
    run_id: str
    dry_run: bool
    confirm_suspensions: bool

    @classmethod
    def from_record(cls, run: Mapping[str, Any]) -> RunOptions:
        return cls(
            run_id=str(run["id"]),
            dry_run=run.get("dry_run") in {"1", 1},
            confirm_suspensions=run.get("confirm_suspensions") in {"1", 1},
        )


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


async def take_budget(res: Resources, ctx: TenantContext) -> None:
    wait = await res.budget.take(ctx.tenant, ctx.config.lucca_requests_per_minute)
    if wait > 0:
        raise LuccaThrottled(ctx.tenant, wait)


async def snapshot_page(res: Resources, ctx: TenantContext, run_id: str, start: int) -> int | None:
    """Store one page of every Elevo profile; the next start index, or None when done.

    Every profile, not only the managed ones, with indexes by externalId and by userName:
    then a page can decide without asking Elevo who holds what.
    """
    page = await ctx.elevo.list_page(start_index=start, count=SNAPSHOT_PAGE)
    tenant = ctx.tenant
    pipe = res.redis.pipeline(transaction=False)
    active = 0
    for profile in page.profiles:
        pipe.hset(
            _run_key(tenant, run_id, "elevo"),
            profile.id,
            orjson.dumps(profile_to_dict(profile)).decode(),
        )
        if profile.external_id:
            pipe.hset(_run_key(tenant, run_id, "by-ext"), profile.external_id, profile.id)
            if profile.managed:
                pipe.sadd(_run_key(tenant, run_id, "managed"), profile.external_id)
                active += profile.active
        if profile.user_name:
            pipe.hset(_run_key(tenant, run_id, "by-name"), profile.user_name.casefold(), profile.id)
    for part in ("elevo", "by-ext", "by-name", "managed"):
        pipe.expire(_run_key(tenant, run_id, part), RUN_KEY_TTL)
    pipe.hincrby(keys.run(tenant, run_id), "active_managed", active)
    await pipe.execute()
    following = start + len(page.profiles)
    if not page.profiles or following > page.total:
        return None
    return following


async def _snapshot_for(
    redis: ArqRedis, tenant: str, run_id: str, batch: LuccaBatch, user_ids: Sequence[str]
) -> Snapshot:
    """The snapshot's answers for these users and their managers (three Redis round trips)."""
    managers = {u.manager_id for u in batch.users.values() if u.manager_id}
    linked_ids = sorted(set(user_ids) | managers)
    names = {uid: u.user_name.casefold() for uid, u in batch.users.items() if u.user_name}
    by_ext = await redis.hmget(_run_key(tenant, run_id, "by-ext"), linked_ids) if linked_ids else []
    profile_ids = {uid: pid.decode() for uid, pid in zip(linked_ids, by_ext, strict=True) if pid}
    named = list(names.values())
    by_name = await redis.hmget(_run_key(tenant, run_id, "by-name"), named) if named else []
    name_ids = {name: pid.decode() for name, pid in zip(named, by_name, strict=True) if pid}
    wanted = {uid: profile_ids.get(uid) or name_ids.get(names.get(uid, "")) for uid in user_ids}
    scim_ids = sorted({pid for pid in wanted.values() if pid})
    blobs = await redis.hmget(_run_key(tenant, run_id, "elevo"), scim_ids) if scim_ids else []
    loaded = {
        pid: profile_from_dict(orjson.loads(blob))
        for pid, blob in zip(scim_ids, blobs, strict=True)
        if blob is not None
    }
    profiles = {uid: loaded[pid] for uid, pid in wanted.items() if pid in loaded}
    return Snapshot(profiles=profiles, profile_ids=profile_ids)


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


async def _remember_pending(
    res: Resources, tenant: str, run_id: str, employee: EmployeeSync
) -> None:
    pipe = res.redis.pipeline(transaction=False)
    for user_id, decision in employee.deferred.items():
        pipe.hset(_run_key(tenant, run_id, "suspend"), user_id, decision.reason)
    for user_id, manager_id in employee.follow_ups.items():
        pipe.hset(_run_key(tenant, run_id, "follow"), user_id, manager_id)
    for part in ("suspend", "follow"):
        pipe.expire(_run_key(tenant, run_id, part), RUN_KEY_TTL)
    await pipe.execute()


def _employee(
    res: Resources,
    ctx: TenantContext,
    options: RunOptions,
    *,
    fetch_managers: bool,
    defer_suspensions: bool = True,
    snapshot: Snapshot | None = None,
    batch: LuccaBatch | None = None,
) -> EmployeeSync:
    async def fetch(user_id: str) -> LuccaBatch:
        return await res.batcher.fetch(
            ctx.tenant, ctx.lucca, ctx.config.lucca_requests_per_minute, user_id
        )

    return EmployeeSync(
        ctx,
        res.redis,
        res.records,
        fetch,
        run_id=options.run_id,
        dry_run=options.dry_run,
        defer_suspensions=defer_suspensions,
        fetch_managers=fetch_managers,
        snapshot=snapshot,
        user_name_owners=(
            user_name_owners(batch, ctx.config.skip_field, ctx.today()) if batch else None
        ),
    )


async def reconcile_page(
    res: Resources, ctx: TenantContext, options: RunOptions, offset: int
) -> bool:
    """Sync one Lucca page; True when more pages follow."""
    await take_budget(res, ctx)
    batch = await ctx.lucca.list_page(offset, PAGE_SIZE)
    tenant, run_id = ctx.tenant, options.run_id
    seen = list(batch.users) + list(batch.invalid)
    pipe = res.redis.pipeline(transaction=False)
    if seen:
        pipe.sadd(_run_key(tenant, run_id, "seen"), *seen)
    pipe.expire(_run_key(tenant, run_id, "seen"), RUN_KEY_TTL)
    pipe.hincrby(keys.run(tenant, run_id), "lucca_users", batch.item_count)
    await pipe.execute()
    if batch.item_count and batch.skip_field_visible and not options.dry_run:
        await res.records.note(tenant, permission_loss="")  # the key sees the field again
    snapshot = await _snapshot_for(res.redis, tenant, run_id, batch, list(batch.users))
    employee = _employee(res, ctx, options, fetch_managers=False, snapshot=snapshot, batch=batch)
    retry_later: set[str] = set()
    await _sync_many(employee, seen, batch, retry_later=retry_later)
    await _remember_pending(res, tenant, run_id, employee)
    if retry_later:
        await res.redis.sadd(_run_key(tenant, run_id, "retry"), *retry_later)
        await res.redis.expire(_run_key(tenant, run_id, "retry"), RUN_KEY_TTL)
    if not options.dry_run:
        await schedule_contract_ends(res, ctx, employee.contract_ends)
    return batch.item_count >= PAGE_SIZE


async def _fetch_ids(res: Resources, ctx: TenantContext, user_ids: Sequence[str]) -> LuccaBatch:
    """One by-id request per 500 users, merged."""
    users: dict[str, Any] = {}
    invalid: dict[str, str] = {}
    visible = True
    count = 0
    for start in range(0, len(user_ids), MAX_IDS_PER_REQUEST):
        await take_budget(res, ctx)
        part = await ctx.lucca.fetch_by_ids(user_ids[start : start + MAX_IDS_PER_REQUEST])
        users.update(part.users)
        invalid.update(part.invalid)
        visible = visible and part.skip_field_visible
        count += part.item_count
    return LuccaBatch(users=users, invalid=invalid, item_count=count, skip_field_visible=visible)


def _merged(first: LuccaBatch, second: LuccaBatch) -> LuccaBatch:
    return LuccaBatch(
        users={**first.users, **second.users},
        invalid={**first.invalid, **second.invalid},
        item_count=first.item_count + second.item_count,
        skip_field_visible=first.skip_field_visible and second.skip_field_visible,
    )


async def _follow_ups_due(redis: ArqRedis, tenant: str, run_id: str) -> set[str]:
    """The users whose manager got a profile after they were synced in this run.

    A manager who still has none (excluded, left, gone, in conflict) changes nothing for them:
    they already hold the empty manager field, and re-reading them would cost Lucca requests.
    """
    raw = await redis.hgetall(_run_key(tenant, run_id, "follow"))
    waiting = {user.decode(): manager.decode() for user, manager in raw.items()}
    managers = sorted(set(waiting.values()))
    if not managers:
        return set()
    linked = await redis.hmget(keys.idmap(tenant), managers)
    has_profile = {m for m, pid in zip(managers, linked, strict=True) if pid is not None}
    return {user for user, manager in waiting.items() if manager in has_profile}


async def _set_of(redis: ArqRedis, key: str) -> set[str]:
    return {m.decode() for m in await redis.smembers(key)}


async def reconcile_finish(res: Resources, ctx: TenantContext, options: RunOptions) -> str:
    """Confirm the vanished, finish the follow-ups, then suspend or hold. Returns the state."""
    tenant, run_id, redis = ctx.tenant, options.run_id, res.redis
    seen = await _set_of(redis, _run_key(tenant, run_id, "seen"))
    managed = await _set_of(redis, _run_key(tenant, run_id, "managed"))
    follow = await _follow_ups_due(redis, tenant, run_id)
    follow |= await _set_of(redis, _run_key(tenant, run_id, "retry"))
    # A listing cut short must not suspend anyone: only a fetch by id confirms "gone".
    to_check = (managed - seen) | follow
    checked: set[str] = set()
    for _ in range(FINISH_PASSES):
        if not to_check:
            break
        employee = await _check(res, ctx, options, sorted(to_check, key=int))
        await _remember_pending(res, tenant, run_id, employee)
        checked |= to_check
        # A manager created in this pass has reports that waited for it: they go next.
        to_check = set(employee.follow_ups) - checked
    return await _weigh_suspensions(res, ctx, options)


async def _check(
    res: Resources, ctx: TenantContext, options: RunOptions, user_ids: list[str]
) -> EmployeeSync:
    """Sync these users after a fetch by id; their managers ride along in the same fetch."""
    batch = await _fetch_ids(res, ctx, user_ids)
    managers = {u.manager_id for u in batch.users.values() if u.manager_id} - set(user_ids)
    if managers:
        batch = _merged(batch, await _fetch_ids(res, ctx, sorted(managers, key=int)))
    # The vanished are looked up by their externalId: Lucca no longer has them.
    users_at_hand = sorted(set(user_ids) | set(batch.users), key=int)
    snapshot = await _snapshot_for(res.redis, ctx.tenant, options.run_id, batch, users_at_hand)
    employee = _employee(res, ctx, options, fetch_managers=True, snapshot=snapshot)
    await _sync_many(employee, user_ids, batch)
    return employee


async def _weigh_suspensions(res: Resources, ctx: TenantContext, options: RunOptions) -> str:
    tenant, run_id, redis = ctx.tenant, options.run_id, res.redis
    raw = await redis.hgetall(_run_key(tenant, run_id, "suspend"))
    pending = {k.decode(): v.decode() for k, v in raw.items()}
    run = await res.records.run_fields(tenant, run_id, "lucca_users", "active_managed") or {}
    lucca_empty = int(run.get("lucca_users") or 0) == 0
    active = int(run.get("active_managed") or 0)
    holds = guard_holds(len(pending), active, ctx.config.guard, lucca_empty)
    if holds and not options.confirm_suspensions:
        for user_id, reason in sorted(pending.items()):
            why = f"held by the safety guard: {reason}"
            await res.records.decision(
                tenant,
                Decision(user_id, Action.HELD, why),
                run_id=run_id,
                written=False,
                dry_run=options.dry_run,
            )
        held = sorted(pending, key=int)
        await res.records.set_run(tenant, run_id, state="held", held=held)
        if not options.dry_run:
            await res.records.note(tenant, held_run=run_id, held_users=orjson.dumps(held).decode())
        return "held"
    if pending:
        # Profiles are read afresh, not from the snapshot: a retried step must see its own
        # earlier writes.
        ids = sorted(pending, key=int)
        batch = await _fetch_ids(res, ctx, ids)
        employee = _employee(res, ctx, options, fetch_managers=True, defer_suspensions=False)
        await _sync_many(employee, ids, batch)
    await res.records.set_run(tenant, run_id, state="done")
    if not options.dry_run:
        await res.records.note(tenant, last_full_run=utcnow_iso(), held_run="", held_users="")
    return "done"

"""What the steps of a reconciliation (and a plan) share: syncing a slice of users, managers
first, where one employee's passing error stays that employee's; and Lucca reads by id that a
retried step never makes twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from app.clients.errors import RateLimited, UpstreamError
from app.clients.lucca import LuccaBatch
from app.core.decision import Action, Decision
from app.core.errors import InvalidLuccaUser
from app.core.rules import Standing, standing_of
from app.service.batcher import MAX_IDS_PER_REQUEST
from app.service.context import TenantContext
from app.service.employee import EmployeeSync
from app.service.fresher import UserBusy
from app.service.listing import attributed, listed_ids, unreadable_items
from app.service.pacing import take_budget
from app.service.resources import Resources
from app.store import queue
from app.store.budget import Priority
from app.store.progress import ListingProgress, RunReads
from app.store.run_model import Run
from app.store.snapshot import RunSets, Snapshot

log = logging.getLogger(__name__)

PAGE_SIZE = 1000  # Lucca items per listing page
WRITE_CONCURRENCY = 16
# One employee's passing Elevo error (a 5xx, a timeout, a 429) is retried this many times, a
# little later each time, before the employee is left for later: never the whole slice.
EMPLOYEE_TRIES = 3
EMPLOYEE_RETRY_SECONDS = 0.5
EMPLOYEE_RETRY_CAP_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class RunOptions:
    run_id: str
    dry_run: bool
    confirms: str | None = None  # a confirmation: the held run whose list it may suspend

    @classmethod
    def of(cls, run: Run) -> RunOptions:
        return cls(run_id=run.id, dry_run=run.dry_run, confirms=run.confirms)


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


def _pause_before(attempt: int, exc: Exception) -> float:
    if isinstance(exc, RateLimited) and exc.retry_after:
        return min(exc.retry_after, EMPLOYEE_RETRY_CAP_SECONDS)
    return EMPLOYEE_RETRY_SECONDS * attempt


async def _sync_one(employee: EmployeeSync, user_id: str, batch: LuccaBatch) -> str | None:
    """Sync one user; None when done, else why it is left for later (after a few tries)."""
    for attempt in range(1, EMPLOYEE_TRIES + 1):
        try:
            await employee.sync(user_id, batch)
            return None
        except (UpstreamError, UserBusy) as exc:  # only passing ones reach here
            if attempt == EMPLOYEE_TRIES:
                return f"{type(exc).__name__}: {exc}"
            log.info("tenant=%s user=%s try %s: %s", employee.tenant, user_id, attempt, exc)
            await asyncio.sleep(_pause_before(attempt, exc))
    raise AssertionError("unreachable")


async def sync_many(
    employee: EmployeeSync, user_ids: Sequence[str], batch: LuccaBatch
) -> dict[str, str]:
    """Sync users in bounded concurrency, managers first; the users left for later (user ->
    why): one flaky answer must not make a thousand users be synced again. A spent Lucca
    budget (a manager read) ends the slice once its wave is done: the step resumes later."""
    await employee.preload_unsure_creates()
    left: dict[str, str] = {}

    async def syncer(users: Iterator[str], errors: list[Exception]) -> None:
        # WRITE_CONCURRENCY syncers take the wave's users in turn: a user whose sync waits
        # for nothing costs no task of its own (a page of 1,000 made 1,000).
        for user_id in users:
            try:
                why = await _sync_one(employee, user_id, batch)
            except Exception as exc:  # the wave goes on; the first error ends the slice after it
                errors.append(exc)
                continue
            if why is not None:
                log.info("tenant=%s user=%s left for later: %s", employee.tenant, user_id, why)
                left[user_id] = why

    try:
        for wave in manager_waves(user_ids, batch):
            users = iter(wave)
            errors: list[Exception] = []
            syncers = min(WRITE_CONCURRENCY, len(wave))
            await asyncio.gather(*(syncer(users, errors) for _ in range(syncers)))
            if errors:
                raise errors[0]
    finally:  # the slice's records in one round trip, those of its writes already written
        await asyncio.shield(employee.flush_records())
    return left


async def sync_or_record(
    employee: EmployeeSync, user_ids: Sequence[str], batch: LuccaBatch
) -> None:
    """Sync; an employee still failing after a few tries is recorded, and the step goes on."""
    left = await sync_many(employee, user_ids, batch)
    for user_id, why in sorted(left.items()):
        reason = f"left for the next run after {EMPLOYEE_TRIES} tries: {why}"
        employee.record(Decision(user_id, Action.ERROR, reason), error=reason)
    await employee.flush_records()


async def remember_pending(sets: RunSets, employee: EmployeeSync) -> None:
    summary = employee.summary()
    suspensions = {user_id: d.reason for user_id, d in summary.deferred.items()}
    await sets.keep_pending(suspensions, summary.follow_ups)
    await employee.follow_ups_kept()


def slice_employee(
    res: Resources,
    tenant_ctx: TenantContext,
    options: RunOptions,
    *,
    fetch_managers: bool,
    defer_suspensions: bool = True,
    snapshot: Snapshot | None = None,
    batch: LuccaBatch | None = None,
    skip_field_decided: bool = False,
    read_mark: int | None = None,
) -> EmployeeSync:
    """The EmployeeSync of one step; `read_mark`: the notice mark noted before its Lucca read."""

    async def fetch(user_id: str, *, fresh: bool = False) -> LuccaBatch:
        return await res.batcher.fetch(
            tenant_ctx.tenant,
            tenant_ctx.lucca,
            tenant_ctx.config.lucca_requests_per_minute,
            user_id,
            fresh=fresh or options.dry_run,
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
        read_mark=None if options.dry_run else read_mark,
        batch_records=True,
    )


async def fetch_ids(
    res: Resources, tenant_ctx: TenantContext, run_id: str, user_ids: Sequence[str]
) -> tuple[LuccaBatch, int]:
    """These users as Lucca has them, one by-id request per 500 not read yet in this run; and
    the oldest notice mark noted before those reads. Each request's answer is kept in the run
    (app/store/progress.py) before the next: a step retried after a spent budget resumes."""
    reads = RunReads(res.redis, tenant_ctx.tenant, run_id)
    known, read, oldest = await reads.known(user_ids)
    missing = [uid for uid in dict.fromkeys(user_ids) if uid not in read]
    parts = [known]
    for start in range(0, len(missing), MAX_IDS_PER_REQUEST):
        await take_budget(res, tenant_ctx, priority=Priority.BACKGROUND)
        asked = missing[start : start + MAX_IDS_PER_REQUEST]
        mark = await queue.notice_mark(res.redis, tenant_ctx.tenant)
        part = attributed(await tenant_ctx.lucca.fetch_by_ids(asked), asked)
        await reads.keep(asked, part, mark)
        parts.append(part)
        oldest = mark if oldest is None else min(oldest, mark)
    return merged(*parts), oldest or 0


def merged(*batches: LuccaBatch) -> LuccaBatch:
    return LuccaBatch(
        users={uid: user for batch in batches for uid, user in batch.users.items()},
        invalid={uid: why for batch in batches for uid, why in batch.invalid.items()},
        item_count=sum(batch.item_count for batch in batches),
        skip_field_shown=frozenset().union(*(batch.skip_field_shown for batch in batches)),
    )


async def read_listing(
    res: Resources,
    tenant_ctx: TenantContext,
    run_id: str,
    *,
    modified_since: datetime | None = None,
    department_id: str | None = None,
    select: Callable[[LuccaBatch], Iterable[str]] = listed_ids,
) -> tuple[list[str], dict[str, str]]:
    """Every page of a Lucca listing (a department's members, what changed since a time): the
    ids `select` keeps of each page, each once, and the items without a usable id (page offset
    and position -> why).

    Each page's ids and the next offset are kept in the run before the next page is read, so
    a step retried after a spent budget resumes at its cursor and reads no page twice.
    """
    progress = ListingProgress(res.redis, tenant_ctx.tenant, run_id)
    offset = await progress.cursor()
    while offset >= 0:
        await take_budget(res, tenant_ctx, priority=Priority.BACKGROUND)
        batch = await tenant_ctx.lucca.list_page(
            offset, PAGE_SIZE, modified_since=modified_since, department_id=department_id
        )
        following = offset + PAGE_SIZE if batch.item_count >= PAGE_SIZE else -1
        unreadable = {f"{offset}{key}": why for key, why in unreadable_items(batch).items()}
        await progress.advance(following, list(select(batch)), unreadable)
        offset = following
    return await progress.collected()

"""Full reconciliation as a chain of short jobs: snapshot Elevo, walk Lucca pages, finish.

A killed job runs again once its worker's heartbeat lapses (app/store/running_jobs.py) and
starts over, so no step may be long: a snapshot job reads a wave of pages, a page job syncs
Lucca pages of 1000 users for a few seconds (PAGES_SLICE_SECONDS), then each queues the next.

    reconcile_snapshot(start)  every Elevo profile -> Redis, a wave of pages at once
    reconcile_page(offset)     Lucca pages: decide and write; suspensions wait
    reconcile_finish()         confirm the vanished by id, weigh suspensions, apply or hold
                               (app/service/reconcile_finish.py)

A step retried (a spent budget, a passing failure, a lost worker) resumes: a page keeps its
Lucca answer until it is done, a page job goes on after the last page done, and the finish
keeps its by-id reads and who it has synced (app/store/progress.py). A page writes an
employee only if no change notice came after it read Lucca (app/service/fresher.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from app.clients.errors import LuccaAuthError, RateLimited
from app.clients.lucca import LuccaBatch
from app.service.context import TenantContext
from app.service.listing import listed_ids, note_unreadable, unreadable_items
from app.service.pacing import flag_refused_key, honour_rate_limit, take_budget
from app.service.reconcile_finish import TimeSlice
from app.service.reconcile_sync import (
    PAGE_SIZE,
    RunOptions,
    remember_pending,
    slice_employee,
    sync_many,
)
from app.service.resources import Resources
from app.service.schedule import schedule_contract_ends
from app.service.skip_field import field_expected
from app.store import keys, queue
from app.store.budget import Priority
from app.store.progress import RunReads
from app.store.snapshot import RunSets

log = logging.getLogger(__name__)

# A page job goes on with the next page until it has worked this long, then queues the next
# job: no job pickup and checks per page of 1,000, and still a short job.
PAGES_SLICE_SECONDS = 3.0
SNAPSHOT_PAGE = 500
# A page that failed is asked again smaller, down to 500 >> 3 = 62 profiles: an Elevo too slow
# to serve 500 within the HTTP timeout still serves the run, in more requests.
SNAPSHOT_PAGE_HALVINGS = 3
# A snapshot step covers this many pages of 500 (4,000 profiles), SNAPSHOT_CONCURRENCY of them
# in flight at once (within the tenant's ElevoSlots): the worker stores one page while Elevo
# serves the next, instead of waiting for each in turn.
SNAPSHOT_WAVE = 8
SNAPSHOT_CONCURRENCY = 4


def snapshot_page_size(failures: int) -> int:
    """The profiles one snapshot request asks for, after `failures` failed tries in a row."""
    return SNAPSHOT_PAGE >> min(max(0, failures), SNAPSHOT_PAGE_HALVINGS)


@dataclass(frozen=True, slots=True)
class _Piece:
    """What one page of 500 of the listing gave: Elevo's totalResults as last seen, and
    whether the listing ended within it."""

    total: int
    ended: bool


async def snapshot_page(
    res: Resources, tenant_ctx: TenantContext, run_id: str, start: int
) -> int | None:
    """Store the pages of every Elevo profile from `start` on, one wave of them; the next
    start index, or None when the listing is done.

    Every profile, not only the managed ones, with indexes by externalId and by userName:
    then a page can decide without asking Elevo who holds what. Without a totalResults kept
    by an earlier page, the first page is read alone (it bounds the others). Each page of 500
    is counted in the run once stored: a step retried after a failure asks only for the pages
    it lacks, in smaller requests (`snapshot_page_size`).
    """
    failures = await res.failures.current(keys.run_failures(tenant_ctx.tenant, run_id))
    sets = RunSets(res.redis, tenant_ctx.tenant, run_id)
    wave = [start + n * SNAPSHOT_PAGE for n in range(SNAPSHOT_WAVE)]
    done, total = await sets.snapshot_progress([_piece_step(at) for at in wave])
    todo = [at for at in wave if _piece_step(at) not in done]
    gate = asyncio.Semaphore(SNAPSHOT_CONCURRENCY)

    async def piece(at: int) -> _Piece:
        async with gate:
            return await _snapshot_piece(res, tenant_ctx, sets, at, snapshot_page_size(failures))

    while todo:
        asked = todo[:1] if total is None else [at for at in todo if at <= total]
        if not asked:
            break
        todo = [at for at in todo if at not in asked]
        results = await asyncio.gather(*(piece(at) for at in asked), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:  # the pages stored are counted: the retry asks only for the others
            raise failed[0]
        pieces = [r for r in results if isinstance(r, _Piece)]
        total = max(p.total for p in pieces)  # the freshest: Elevo may have grown meanwhile
        if any(p.ended for p in pieces):
            return None
    following = wave[-1] + SNAPSHOT_PAGE
    return None if total is None or following > total else following


def _piece_step(at: int) -> str:
    return f"snapshot:{at}"


async def _snapshot_piece(
    res: Resources, tenant_ctx: TenantContext, sets: RunSets, at: int, count: int
) -> _Piece:
    """Store the page of 500 profiles at index `at`, in requests of `count` (fewer when Elevo
    serves fewer than asked), and count it in the run."""
    end = at + SNAPSHOT_PAGE
    active = 0
    while True:
        page = await tenant_ctx.elevo.list_page(start_index=at, count=min(count, end - at))
        active += await sets.store_profiles(page.profiles, total=page.total)
        at += len(page.profiles)
        ended = not page.profiles or at > page.total
        if ended or at >= end:
            break
    await res.runs.count_once(
        tenant_ctx.tenant, sets.run_id, _piece_step(end - SNAPSHOT_PAGE), {"active_managed": active}
    )
    return _Piece(total=page.total, ended=ended)


async def read_page(
    res: Resources, tenant_ctx: TenantContext, run_id: str, offset: int
) -> tuple[LuccaBatch, int]:
    """The Lucca page at `offset` and the notice mark noted before it was read: read once per
    run, kept until the page is done."""
    reads = RunReads(res.redis, tenant_ctx.tenant, run_id)
    kept = await reads.page(offset)
    if kept is not None:
        return kept
    await take_budget(res, tenant_ctx, priority=Priority.BACKGROUND)
    mark = await queue.notice_mark(res.redis, tenant_ctx.tenant)
    batch = await tenant_ctx.lucca.list_page(offset, PAGE_SIZE)
    await reads.keep_page(offset, batch, mark)
    return batch, mark


async def reconcile_pages(
    res: Resources,
    tenant_ctx: TenantContext,
    options: RunOptions,
    offset: int,
    time_slice: TimeSlice,
) -> int | None:
    """Sync Lucca pages from `offset`, or from after the last page an earlier try finished,
    until the slice is spent; the offset of the next page, or None after the last one.

    A full page reads the next one meanwhile (`read_page`: the budget taken for it, kept in
    the run until that page is done): the worker syncs while Lucca answers.
    """
    run_id = options.run_id
    resume_at = await RunReads(res.redis, tenant_ctx.tenant, run_id).resume_at()
    if resume_at < 0:  # the last page was done: only the finish is left to queue
        return None
    at = max(offset, resume_at)
    read_ahead: tuple[LuccaBatch, int] | None = None
    while True:
        batch, mark = read_ahead or await read_page(res, tenant_ctx, run_id, at)
        more = batch.item_count >= PAGE_SIZE
        ahead = None
        if more:
            ahead = asyncio.create_task(_read_ahead(res, tenant_ctx, run_id, at + PAGE_SIZE))
        try:
            await _page(res, tenant_ctx, options, at, batch, mark, more=more)
        finally:  # waited for, even on a failure: a page read is kept, not lost
            read_ahead = await ahead if ahead is not None else None
        time_slice.worked()
        if not more:
            return None
        at += PAGE_SIZE
        if time_slice.spent():
            return at


async def _read_ahead(
    res: Resources, tenant_ctx: TenantContext, run_id: str, offset: int
) -> tuple[LuccaBatch, int] | None:
    """The next page read ahead, or None. What stops it is for the page's own read to meet
    again; a 429 or a refused key is heeded at once, as a step would."""
    try:
        return await read_page(res, tenant_ctx, run_id, offset)
    except RateLimited as exc:  # every process waits as Lucca asked, the next read too
        await honour_rate_limit(res, tenant_ctx, exc)
    except LuccaAuthError as exc:  # nobody calls Lucca with this key again
        await flag_refused_key(res, tenant_ctx.tenant, exc)
    except Exception as exc:
        log.info(
            "tenant=%s run=%s page %s not read ahead: %r", tenant_ctx.tenant, run_id, offset, exc
        )
    return None


async def _page(
    res: Resources,
    tenant_ctx: TenantContext,
    options: RunOptions,
    offset: int,
    batch: LuccaBatch,
    mark: int,
    *,
    more: bool,
) -> None:
    tenant = tenant_ctx.tenant
    sets = RunSets(res.redis, tenant, options.run_id)
    seen = listed_ids(batch)
    unreadable = unreadable_items(batch)
    await sets.mark_seen(seen)
    counts = {
        "lucca_users": batch.item_count,
        "skip_field_shown": len(batch.skip_field_shown),
        "lucca_unreadable": len(unreadable),
    }
    await res.runs.count_once(tenant, options.run_id, f"page:{offset}", counts)
    run = await res.runs.get(tenant, options.run_id)
    shown = run.skip_field_shown if run is not None else 0  # in the run's pages so far
    if not options.dry_run:
        await note_unreadable(res, tenant, unreadable, run_id=options.run_id)
    if not shown and await field_expected(res, tenant):
        # Nobody so far shows the skip field that the last listing showed: maybe the key lost
        # it. Only the complete listing can tell, so the finish decides these users.
        await sets.keep_undecided(seen)
    else:
        await _sync_page(res, tenant_ctx, options, batch, mark, skip_field_decided=shown > 0)
    following = offset + PAGE_SIZE if more else -1
    await RunReads(res.redis, tenant, options.run_id).page_done(offset, following)


async def _sync_page(
    res: Resources,
    tenant_ctx: TenantContext,
    options: RunOptions,
    batch: LuccaBatch,
    mark: int,
    *,
    skip_field_decided: bool,
) -> None:
    sets = RunSets(res.redis, tenant_ctx.tenant, options.run_id)
    snapshot = await sets.snapshot_for(batch, list(batch.users))
    employee = slice_employee(
        res,
        tenant_ctx,
        options,
        fetch_managers=False,
        snapshot=snapshot,
        batch=batch,
        skip_field_decided=skip_field_decided,
        read_mark=mark,
    )
    await employee.preload_skip_memory(batch.users)
    left = await sync_many(employee, listed_ids(batch), batch)
    await remember_pending(sets, employee)
    if left:  # the finish syncs them again, after a fresh read by id
        await sets.retry_later(left)
    if not options.dry_run:
        await schedule_contract_ends(res, tenant_ctx, employee.summary().contract_ends)

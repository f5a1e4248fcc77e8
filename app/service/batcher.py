"""Per-tenant batching of Lucca reads: concurrent jobs share one `id=` request.

Each job asks for its own user; the asks of one tenant that arrive within a short window
(or until a batch is full) go out as a single `GET /api/v3/users?id=a,b,c`. While a request
of the tenant is in flight, the next batch keeps gathering asks until it returns (at most
`hold` seconds): under load the asks pile up and share requests, which spares the Lucca
budget and the worker's CPU, and an idle tenant's ask waits only the window. Every request
first takes a request from the Lucca host's shared budget (app/store/budget.py), as live work
unless every ask in it is background work; without one, the whole batch is told how long to
wait, and the jobs defer themselves instead of sleeping in a worker slot. A 429 pauses the host
for its Retry-After and is told to the jobs as such a wait. What a request reads is shared
through Redis (app/store/read_cache.py), so one request serves the jobs of every process, the
deferred ones included.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.asyncio.client import Pipeline

from app.clients.errors import LuccaAuthError, LuccaRateLimited
from app.clients.lucca import LuccaBatch, LuccaClient
from app.core.errors import SyncError
from app.core.lucca_user import is_user_id
from app.service.listing import attributed
from app.store.budget import LuccaBudget, Priority
from app.store.read_cache import LuccaReadCache

log = logging.getLogger(__name__)

MAX_IDS_PER_REQUEST = 500  # keeps the URL well under common 8 KiB limits
NOT_A_USER_ID = "not a Lucca user id"
# A process whose last BUSY_ASKS asks came within BUSY_SPAN_SECONDS (100 asks/s) works
# through a backlog: its batches wait the busy window.
BUSY_ASKS = 10
BUSY_SPAN_SECONDS = 0.1
# When a 429 names no Retry-After: long enough for a per-minute window to move on.
DEFAULT_RETRY_AFTER = 10.0


class LuccaThrottled(SyncError):
    """The tenant's Lucca budget is spent for now; ask again after `wait` seconds."""

    def __init__(self, tenant: str, wait: float) -> None:
        super().__init__(f"Lucca budget of tenant {tenant} spent; retry in {wait:.1f}s")
        self.wait = wait


class LuccaKeyFlagged(LuccaAuthError):
    """Not called: Lucca refused the tenant's key earlier, and the flag still holds."""

    def __init__(self, refusal: str) -> None:
        super().__init__(f"not calling Lucca: {refusal}", status=401)


@dataclass
class _Batch:
    client: LuccaClient
    per_minute: int
    future: asyncio.Future[LuccaBatch]
    priority: Priority
    ids: set[str] = field(default_factory=set)
    window_closed: bool = False  # ready to go, held only by the tenant's request in flight
    started: bool = False


class LuccaBatcher:
    def __init__(
        self,
        budget: LuccaBudget,
        cache: LuccaReadCache,
        *,
        window: float,
        hold: float = 0.0,
        busy_window: float | None = None,
        busy_span: float = BUSY_SPAN_SECONDS,
    ) -> None:
        self._budget = budget
        self._cache = cache
        self._window = window
        self._hold = hold
        # While the process asks fast (a backlog), a batch waits longer: the jobs wait for a
        # core anyway, and every ask that joins a request spares one (its CPU and budget).
        self._busy_window = window if busy_window is None else max(window, busy_window)
        self._asked_at: deque[float] = deque(maxlen=BUSY_ASKS)
        self._busy_span = busy_span
        self._open: dict[str, _Batch] = {}
        self._in_flight: dict[str, int] = {}  # the tenant's requests on their way, here
        self._tasks: set[asyncio.Task[None]] = set()

    async def fetch(
        self,
        tenant: str,
        client: LuccaClient,
        per_minute: int,
        user_id: str,
        *,
        priority: Priority,
        fresh: bool = False,
    ) -> LuccaBatch:
        """The user's Lucca item, in a batch shared with concurrent asks; `fresh` skips the
        shared cache (a plan bumps no generation, so a cached read may predate a change; a
        live job looked at it in its first round trip)."""
        if not is_user_id(user_id):
            # Never in a shared request: one bad id would make Lucca's answer fail for all.
            return LuccaBatch(users={}, invalid={user_id: NOT_A_USER_ID}, item_count=0)
        cached = None if fresh else await self._cache.get(tenant, user_id)
        if cached is not None:
            return cached
        batch = self._open.get(tenant)
        if batch is None or len(batch.ids) >= MAX_IDS_PER_REQUEST or batch.client is not client:
            loop = asyncio.get_running_loop()
            batch = _Batch(
                client=client,
                per_minute=per_minute,
                future=loop.create_future(),
                priority=priority,
            )
            self._open[tenant] = batch
            loop.call_later(self._window_now(loop.time()), self._close_window, tenant, batch)
        if priority is Priority.LIVE:
            batch.priority = Priority.LIVE  # a live ask never waits behind background work
        batch.ids.add(user_id)
        self._asked_at.append(asyncio.get_running_loop().time())
        if batch.window_closed and len(batch.ids) >= MAX_IDS_PER_REQUEST:
            self._start_flush(tenant, batch)  # full: no reason to hold it any longer
        # shield: one job's cancellation must not cancel the request the others wait for.
        return await asyncio.shield(batch.future)

    @staticmethod
    def stage_cached(pipe: Pipeline, tenant: str, user_id: str) -> None:
        """The shared cache's read of the user, in the caller's round trip (a live job's first
        one); `cached` takes its answers. A `fetch` after a miss passes `fresh`."""
        LuccaReadCache.stage_get(pipe, tenant, user_id)

    @staticmethod
    def cached(user_id: str, answers: Sequence[bytes | None]) -> LuccaBatch | None:
        return LuccaReadCache.read_get(user_id, answers) if is_user_id(user_id) else None

    async def wanted_count(self, tenant: str) -> int:
        """How many users of the tenant wait for its Lucca budget."""
        return await self._cache.wanted_count(tenant)

    def _window_now(self, now: float) -> float:
        """The window of a batch opening now: the busy one when the process's last BUSY_ASKS
        asks all came within the busy span (a backlog), else the usual one."""
        asked = self._asked_at
        busy = len(asked) == BUSY_ASKS and now - asked[0] <= self._busy_span
        return self._busy_window if busy else self._window

    def _close_window(self, tenant: str, batch: _Batch) -> None:
        """The window is over: the batch goes now, unless a request of the tenant is in flight;
        then it goes when that one returns, or after `hold`, whichever comes first."""
        batch.window_closed = True
        if self._in_flight.get(tenant, 0) == 0 or len(batch.ids) >= MAX_IDS_PER_REQUEST:
            self._start_flush(tenant, batch)
        else:
            asyncio.get_running_loop().call_later(self._hold, self._start_flush, tenant, batch)

    def _start_flush(self, tenant: str, batch: _Batch) -> None:
        if batch.started:
            return
        batch.started = True
        if self._open.get(tenant) is batch:
            del self._open[tenant]  # later asks open the next batch
        self._in_flight[tenant] = self._in_flight.get(tenant, 0) + 1
        task = asyncio.create_task(self._flush(tenant, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self._returned(tenant))

    def _returned(self, tenant: str) -> None:
        """A request of the tenant is back: the batch its flight held goes now."""
        left = self._in_flight.get(tenant, 1) - 1
        if left > 0:
            self._in_flight[tenant] = left
        else:
            self._in_flight.pop(tenant, None)
        waiting = self._open.get(tenant)
        if waiting is not None and waiting.window_closed:
            self._start_flush(tenant, waiting)

    async def _flush(self, tenant: str, batch: _Batch) -> None:
        try:
            waiting, generations = await self._first_reads(tenant, batch)
            wait = await self._budget.take(
                batch.client.base_url, batch.per_minute, priority=batch.priority, tenant=tenant
            )
            if wait > 0:
                await self._cache.want(tenant, batch.ids)
                raise LuccaThrottled(tenant, wait)
            wanted = await self._cache.read_wanted(tenant, waiting)
            extra = [uid for uid in wanted if uid not in batch.ids]
            ids = sorted(batch.ids, key=int) + extra
            generations += await self._cache.generations(tenant, extra)
            result = attributed(await batch.client.fetch_by_ids(ids), ids)
            await self._cache.store(tenant, ids, generations, result)
        except LuccaRateLimited as exc:  # every process waits; for the jobs, no failure
            wait = exc.retry_after or DEFAULT_RETRY_AFTER
            await self._budget.pause(batch.client.base_url, wait)
            self._fail(batch, LuccaThrottled(tenant, wait))
        except Exception as exc:  # every waiter gets the error: the jobs decide what to retry
            self._fail(batch, exc)
        else:
            if not batch.future.done():
                batch.future.set_result(result)

    async def _first_reads(self, tenant: str, batch: _Batch) -> tuple[list[bytes], list[int]]:
        """Before a request, in one round trip: the flag of a key Lucca refused, the users
        whose jobs wait for the budget (they ride along), and the generations of the batch's
        own users (noted before the request: what each read will be good for)."""
        own = sorted(batch.ids, key=int)
        room = MAX_IDS_PER_REQUEST - len(own)
        pipe = self._cache.pipeline()
        self._budget.stage_revoked(pipe, tenant)
        self._cache.stage_generations(pipe, tenant, own)
        if room > 0:
            self._cache.stage_wanted(pipe, tenant, room)
        revoked, generations, *waiting = await pipe.execute()
        refusal = LuccaBudget.read_revoked(revoked)
        if refusal is not None:
            raise LuccaKeyFlagged(refusal)
        return (waiting[0] if waiting else []), LuccaReadCache.read_generations(generations)

    @staticmethod
    def _fail(batch: _Batch, exc: BaseException) -> None:
        if not batch.future.done():
            batch.future.set_exception(exc)
            # Mark retrieved: when every waiter was cancelled nobody reads it, and that is fine.
            batch.future.exception()

"""Per-tenant batching of Lucca reads: concurrent jobs share one `id=` request.

Each job asks for its own user; the asks of one tenant that arrive within a short window
(or until a batch is full) go out as a single `GET /api/v3/users?id=a,b,c`. Every request
first takes a token from the tenant's shared budget; without one, the whole batch is told
how long to wait, and the jobs defer themselves instead of sleeping in a worker slot. What a
request reads is shared through Redis (app/store/read_cache.py), so one request serves the jobs of
every process, the deferred ones included.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from app.clients.errors import LuccaAuthError, LuccaRateLimited
from app.clients.lucca import LuccaBatch, LuccaClient
from app.core.errors import SyncError
from app.core.lucca_user import is_user_id
from app.service.listing import attributed
from app.store.budget import LuccaBudget
from app.store.read_cache import LuccaReadCache

log = logging.getLogger(__name__)

MAX_IDS_PER_REQUEST = 500  # keeps the URL well under common 8 KiB limits
NOT_A_USER_ID = "not a Lucca user id"


class LuccaThrottled(SyncError):
    """The tenant's Lucca budget is spent for now; ask again after `wait` seconds."""

    def __init__(self, tenant: str, wait: float) -> None:
        super().__init__(f"Lucca budget of tenant {tenant} spent; retry in {wait:.1f}s")
        self.wait = wait


@dataclass
class _Batch:
    client: LuccaClient
    per_minute: int
    future: asyncio.Future[LuccaBatch]
    ids: set[str] = field(default_factory=set)


class LuccaBatcher:
    def __init__(self, budget: LuccaBudget, cache: LuccaReadCache, *, window: float) -> None:
        self._budget = budget
        self._cache = cache
        self._window = window
        self._open: dict[str, _Batch] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def fetch(
        self,
        tenant: str,
        client: LuccaClient,
        per_minute: int,
        user_id: str,
        *,
        fresh: bool = False,
    ) -> LuccaBatch:
        """The user's Lucca item, in a batch shared with concurrent asks; `fresh` skips the
        shared cache (a plan bumps no generation, so a cached read may predate a change)."""
        if not is_user_id(user_id):
            # Never in a shared request: one bad id would make Lucca's answer fail for all.
            return LuccaBatch(users={}, invalid={user_id: NOT_A_USER_ID}, item_count=0)
        cached = None if fresh else await self._cache.get(tenant, user_id)
        if cached is not None:
            return cached
        batch = self._open.get(tenant)
        if batch is None or len(batch.ids) >= MAX_IDS_PER_REQUEST or batch.client is not client:
            loop = asyncio.get_running_loop()
            batch = _Batch(client=client, per_minute=per_minute, future=loop.create_future())
            self._open[tenant] = batch
            loop.call_later(self._window, self._start_flush, tenant, batch)
        batch.ids.add(user_id)
        # shield: one job's cancellation must not cancel the request the others wait for.
        return await asyncio.shield(batch.future)

    async def wanted_count(self, tenant: str) -> int:
        """How many users of the tenant wait for its Lucca budget."""
        return await self._cache.wanted_count(tenant)

    def _start_flush(self, tenant: str, batch: _Batch) -> None:
        task = asyncio.create_task(self._flush(tenant, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self, tenant: str, batch: _Batch) -> None:
        if self._open.get(tenant) is batch:
            del self._open[tenant]
        try:
            revoked = await self._budget.revoked(tenant)
            if revoked is not None:
                raise LuccaAuthError(f"not calling Lucca: {revoked}", status=401)
            wait = await self._budget.take(tenant, batch.per_minute)
            if wait > 0:
                await self._cache.want(tenant, batch.ids)
                raise LuccaThrottled(tenant, wait)
            ids = sorted(batch.ids, key=int)
            ids += [
                uid
                for uid in await self._cache.wanted(tenant, MAX_IDS_PER_REQUEST - len(ids))
                if uid not in batch.ids
            ]
            generations = await self._cache.generations(tenant, ids)
            result = attributed(await batch.client.fetch_by_ids(ids), ids)
            await self._cache.store(tenant, ids, generations, result)
        except LuccaRateLimited as exc:
            await self._budget.cool_down(tenant, exc.retry_after or 10.0)
            self._fail(batch, exc)
        except Exception as exc:  # every waiter gets the error: the jobs decide what to retry
            self._fail(batch, exc)
        else:
            if not batch.future.done():
                batch.future.set_result(result)

    @staticmethod
    def _fail(batch: _Batch, exc: BaseException) -> None:
        if not batch.future.done():
            batch.future.set_exception(exc)
            # Mark retrieved: when every waiter was cancelled nobody reads it, and that is fine.
            batch.future.exception()

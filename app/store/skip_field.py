"""What the sync remembers of a tenant's skip field (sync-rules.md, "Absent means unticked" and
"Permission loss"): who was last seen excluded, and how many employees showed the field in the
last complete listing. Both expire when nothing reads the tenant for a long time; every read
that writes them starts the expiry afresh."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

from app.store import keys

# Longer than any pause between two full runs a tenant may have (the nightly one refreshes it).
MEMORY_SECONDS = 90 * 24 * 3600


class SkipFieldMemory:
    def __init__(self, redis: ArqRedis, tenant: str) -> None:
        self._redis = redis
        self._tenant = tenant

    async def excluded_among(self, user_ids: Sequence[str]) -> set[str]:
        """Those of these users last seen excluded (one round trip)."""
        if not user_ids:
            return set()
        flags = await self._redis.smismember(keys.skip_excluded(self._tenant), list(user_ids))
        return {user_id for user_id, flag in zip(user_ids, flags, strict=True) if flag}

    def stage_excluded(self, pipe: Pipeline, user_id: str) -> None:
        """`excluded_among([user_id])` in a pipeline: its answer is 1 when last seen excluded."""
        pipe.sismember(keys.skip_excluded(self._tenant), user_id)

    async def note(self, *, excluded: Iterable[str] = (), unticked: Iterable[str] = ()) -> None:
        """Users seen excluded now, and users last seen excluded who are no longer."""
        ticked, cleared = list(excluded), list(unticked)
        if not ticked and not cleared:
            return
        key = keys.skip_excluded(self._tenant)
        pipe = self._redis.pipeline(transaction=False)
        if ticked:
            pipe.sadd(key, *ticked)
        if cleared:
            pipe.srem(key, *cleared)
        pipe.expire(key, MEMORY_SECONDS)
        await pipe.execute()

    async def last_listing(self) -> int | None:
        """How many showed the field in the last complete listing; None before the first."""
        raw = await self._redis.get(keys.skip_listing(self._tenant))
        return None if raw is None else int(raw)

    async def note_listing(self, shown: int) -> None:
        """A complete listing: its count, and a fresh expiry for who was last seen excluded."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(keys.skip_listing(self._tenant), shown, ex=MEMORY_SECONDS)
        pipe.expire(keys.skip_excluded(self._tenant), MEMORY_SECONDS)
        await pipe.execute()

    async def forget(self) -> None:
        """Start afresh: the skip field changed, or its loss was accepted."""
        await self._redis.delete(keys.skip_excluded(self._tenant), keys.skip_listing(self._tenant))

"""What one Lucca `id=` request read, shared with every job (in any process) that needs it.

A per-user job may use a cached read of its user only if the read began after the newest
change notice for that user: the fetcher notes each user's generation (bumped by every
notice, keys.gen) *before* it calls Lucca, and a job accepts the entry only when that noted
generation is at least the user's current one. No clock is compared.

Jobs that find the budget spent leave their user in a per-tenant "wanted" set; whichever job
next gets a token fetches those users along with its own, so the jobs that were deferred
wake up to a cache hit instead of a request each.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson
from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

from app.clients.lucca import LuccaBatch
from app.core.errors import InvalidLuccaUser
from app.core.lucca_user import LuccaUser, is_user_id, parse_user
from app.store import keys

CACHE_SECONDS = 60


class LuccaReadCache:
    def __init__(self, redis: ArqRedis) -> None:
        self._redis = redis

    async def get(self, tenant: str, user_id: str) -> LuccaBatch | None:
        """A batch holding this user's last read, if it is at least as new as its notices."""
        pipe = self._redis.pipeline(transaction=False)
        self.stage_get(pipe, tenant, user_id)
        return self.read_get(user_id, await pipe.execute())

    @staticmethod
    def stage_get(pipe: Pipeline, tenant: str, user_id: str) -> None:
        """`get` in a pipeline; `read_get` takes its two answers."""
        pipe.get(keys.lucca_read(tenant, user_id))
        pipe.get(keys.gen(tenant, user_id))

    @staticmethod
    def read_get(user_id: str, answers: Sequence[bytes | None]) -> LuccaBatch | None:
        raw, current = answers
        if raw is None:
            return None
        entry = orjson.loads(raw)
        if int(entry["gen"]) < int(current or 0):
            return None  # a notice came after this read began: read again
        return _as_batch(user_id, entry)

    def pipeline(self) -> Pipeline:
        """For the reads a request makes first (with the budget's), in one round trip."""
        return self._redis.pipeline(transaction=False)

    async def generations(self, tenant: str, user_ids: Sequence[str]) -> list[int]:
        """Noted before the request: the generation each read will be good for."""
        if not user_ids:
            return []
        return self.read_generations(await self._redis.mget(_generation_keys(tenant, user_ids)))

    @staticmethod
    def stage_generations(pipe: Pipeline, tenant: str, user_ids: Sequence[str]) -> None:
        """`generations` in a pipeline (`user_ids` not empty); `read_generations` reads it."""
        pipe.mget(_generation_keys(tenant, user_ids))

    @staticmethod
    def read_generations(answer: Sequence[bytes | None]) -> list[int]:
        return [int(value or 0) for value in answer]

    async def store(
        self, tenant: str, user_ids: Sequence[str], generations: Sequence[int], batch: LuccaBatch
    ) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for user_id, generation in zip(user_ids, generations, strict=True):
            user = batch.users.get(user_id)
            entry = {
                "gen": generation,
                "item": dict(user.raw) if user is not None else None,
                "invalid": batch.invalid.get(user_id),
                "shown": user_id in batch.skip_field_shown,
            }
            pipe.set(keys.lucca_read(tenant, user_id), orjson.dumps(entry), ex=CACHE_SECONDS)
        if user_ids:
            pipe.zrem(keys.lucca_wanted(tenant), *user_ids)
        await pipe.execute()

    async def want(self, tenant: str, user_ids: Iterable[str]) -> None:
        ids = [user_id for user_id in user_ids if is_user_id(user_id)]
        if ids:
            await self._redis.zadd(keys.lucca_wanted(tenant), {uid: 0 for uid in ids}, nx=True)

    async def wanted_count(self, tenant: str) -> int:
        """How many users' jobs wait for the budget."""
        return int(await self._redis.zcard(keys.lucca_wanted(tenant)))

    async def wanted(self, tenant: str, limit: int) -> list[str]:
        """Up to `limit` wanted users; a member that is no user id (an older version's) is
        dropped, not fetched: it would fail the request of every user fetched with it."""
        if limit <= 0:
            return []
        return await self.read_wanted(
            tenant, await self._redis.zrange(keys.lucca_wanted(tenant), 0, limit - 1)
        )

    @staticmethod
    def stage_wanted(pipe: Pipeline, tenant: str, limit: int) -> None:
        """`wanted` in a pipeline (`limit` > 0); `read_wanted` reads its answer."""
        pipe.zrange(keys.lucca_wanted(tenant), 0, limit - 1)

    async def read_wanted(self, tenant: str, raw: Sequence[bytes]) -> list[str]:
        members = [member.decode() for member in raw]
        unusable = [member for member in members if not is_user_id(member)]
        if unusable:
            await self._redis.zrem(keys.lucca_wanted(tenant), *unusable)
        return [member for member in members if is_user_id(member)]


def _generation_keys(tenant: str, user_ids: Sequence[str]) -> list[str]:
    return [keys.gen(tenant, uid) for uid in user_ids]


def _as_batch(user_id: str, entry: dict[str, object]) -> LuccaBatch:
    item, invalid = entry.get("item"), entry.get("invalid")
    users: dict[str, LuccaUser] = {}
    problems: dict[str, str] = {}
    if isinstance(invalid, str):
        problems[user_id] = invalid
    elif isinstance(item, dict):
        try:
            users[user_id] = parse_user(item)
        except InvalidLuccaUser as exc:  # cannot happen for an item that parsed once
            problems[user_id] = str(exc)
    return LuccaBatch(
        users=users,
        invalid=problems,
        item_count=len(users) + len(problems),
        skip_field_shown=frozenset({user_id}) if entry.get("shown") else frozenset(),
    )

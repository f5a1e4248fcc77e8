"""Consecutive upstream failures of a user's sync or of a run's steps, for backoff and giving up.

Backoff grows with these, not with ARQ's tries (which also count waits for the budget or for
a busy user).
"""

from __future__ import annotations

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

FAILURE_MEMORY_SECONDS = 6 * 3600


class Failures:
    """Counters under keys.failures (a user's sync) or keys.run_failures (a run's steps)."""

    def __init__(self, redis: ArqRedis) -> None:
        self._redis = redis

    async def count(self, key: str) -> int:
        """One more failure; how many in a row."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, FAILURE_MEMORY_SECONDS)
        failures, _ = await pipe.execute()
        return int(failures)

    async def current(self, key: str) -> int:
        """How many in a row so far (none counted)."""
        return int(await self._redis.get(key) or 0)

    async def clear(self, key: str) -> None:
        await self._redis.delete(key)

    @staticmethod
    def stage_clear(pipe: Pipeline, key: str) -> None:
        pipe.delete(key)

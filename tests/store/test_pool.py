"""The jobs' Redis pool hands out connections side by side: redis-py 5's stock pool checks
each one under a single lock, which queued every job's commands behind one another on a busy
worker (docs/benchmarks.md, problem 5)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio.connection import ConnectionPool

from app.store.pool import UnlockedConnectionPool, unlock_pool

CHECK_SECONDS = 0.2  # what one connection check costs on a busy event loop, magnified


class SlowCheck:
    """A pool whose connection check takes CHECK_SECONDS, as a busy loop makes it."""

    async def ensure_connection(self, connection: Any) -> None:
        await asyncio.sleep(CHECK_SECONDS)
        await super().ensure_connection(connection)


class SlowStock(SlowCheck, ConnectionPool):
    pass


class SlowUnlocked(SlowCheck, UnlockedConnectionPool):
    pass


async def ten_pings(pool: ConnectionPool) -> float:
    client = ArqRedis(connection_pool=pool)
    started = time.monotonic()
    await asyncio.gather(*(client.ping() for _ in range(10)))
    elapsed = time.monotonic() - started
    await pool.disconnect()
    return elapsed


async def test_connections_are_checked_side_by_side(redis: ArqRedis) -> None:
    kwargs = redis.connection_pool.connection_kwargs
    assert await ten_pings(SlowStock(**kwargs)) >= 10 * CHECK_SECONDS  # one after another
    assert await ten_pings(SlowUnlocked(**kwargs)) < 3 * CHECK_SECONDS


async def test_the_pool_is_swapped_with_the_same_settings(redis: ArqRedis) -> None:
    stock = redis.connection_pool
    await unlock_pool(redis)
    assert isinstance(redis.connection_pool, UnlockedConnectionPool)
    assert redis.connection_pool.connection_kwargs == stock.connection_kwargs
    assert await redis.set("pool-check", "1")
    assert await redis.get("pool-check") == b"1"

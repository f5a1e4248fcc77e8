"""The Redis connection pool every job shares, without redis-py 5's global checkout lock.

redis-py 5.3's asyncio `ConnectionPool.get_connection` holds one `asyncio.Lock` while it
checks the connection it hands out (`can_read_destructive`, a socket read under a zero
timeout: a whole event-loop iteration). Every Redis command of every job queues on that
lock, so a worker running 200 jobs serves a few dozen commands per second once its loop is
busy: jobs waited there past ARQ's timeout (docs/benchmarks.md, problem 5). Taking a
connection needs no lock in asyncio (a pop from a list, with no await in between); the check
happens after, as redis-py's own `BlockingConnectionPool` and later versions do it.
"""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis
from redis.asyncio.connection import AbstractConnection, ConnectionPool


class UnlockedConnectionPool(ConnectionPool):
    async def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Any:
        connection: AbstractConnection = self.get_available_connection()  # type: ignore[no-untyped-call]
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection


async def unlock_pool(redis: ArqRedis) -> None:
    """Give `redis` an UnlockedConnectionPool with the same connection settings."""
    stock = redis.connection_pool
    redis.connection_pool = UnlockedConnectionPool(
        connection_class=stock.connection_class,
        max_connections=stock.max_connections,
        **stock.connection_kwargs,
    )
    await stock.disconnect()

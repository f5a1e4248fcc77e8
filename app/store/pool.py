"""The Redis connection pool every job shares, without redis-py 5's global checkout lock.

redis-py 5.3's asyncio `ConnectionPool.get_connection` holds one `asyncio.Lock` while it
checks the connection it hands out (`can_read_destructive`, a socket read under a zero
timeout: a whole event-loop iteration). Every Redis command of every job queues on that
lock, so a worker running 200 jobs serves a few dozen commands per second once its loop is
busy: jobs waited there past ARQ's timeout (docs/benchmarks.md, problem 5). Taking a
connection needs no lock in asyncio (a pop from a list, with no await in between); the check
happens after, as redis-py's own `BlockingConnectionPool` and later versions do it.

Behind Redis Sentinel (REDIS_SENTINELS) the pool is sentinel-managed: a connection asks the
sentinels where the master is as it connects, so connections made after a failover reach the
new primary. arq's sentinel path gives neither the sentinels nor the master a connect timeout;
a sentinel on a host that is down would then hold every new connection for the kernel's TCP
timeout (minutes), so the swapped pool sets the timeout arq gives a plain connection.
"""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

# arq's `RedisSettings.conn_timeout` for a plain connection; a sentinel's answers are small,
# so a sentinel that accepts but does not answer within it is skipped for the next one too.
CONNECT_TIMEOUT_SECONDS = 1.0


class _UnlockedCheckout:
    async def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Any:
        pool: Any = self  # a mixin of a redis-py pool, which is untyped
        connection: AbstractConnection = pool.get_available_connection()
        try:
            await pool.ensure_connection(connection)
        except BaseException:
            await pool.release(connection)
            raise
        return connection


class UnlockedConnectionPool(_UnlockedCheckout, ConnectionPool):
    pass


class UnlockedSentinelPool(_UnlockedCheckout, SentinelConnectionPool):
    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:  # the client closes (a new master only drops idle connections)
            for sentinel in self.sentinel_manager.sentinels:
                await sentinel.aclose()


async def unlock_pool(redis: ArqRedis) -> None:
    """Give `redis` an unlocked pool with the same connection settings."""
    stock = redis.connection_pool
    if isinstance(stock, SentinelConnectionPool):
        redis.connection_pool = _unlocked_sentinel_pool(stock)
        for sentinel in stock.sentinel_manager.sentinels:  # not closed by the stock pool
            await sentinel.aclose()
    else:
        redis.connection_pool = UnlockedConnectionPool(
            connection_class=stock.connection_class,
            max_connections=stock.max_connections,
            **stock.connection_kwargs,
        )
    await stock.disconnect()


def _unlocked_sentinel_pool(stock: SentinelConnectionPool) -> UnlockedSentinelPool:
    kwargs = {k: v for k, v in stock.connection_kwargs.items() if k != "connection_pool"}
    kwargs.setdefault("socket_connect_timeout", CONNECT_TIMEOUT_SECONDS)
    old = stock.sentinel_manager
    addresses = [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in old.sentinels
    ]
    timeouts = {
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "socket_timeout": CONNECT_TIMEOUT_SECONDS,
    }
    manager = Sentinel(  # type: ignore[no-untyped-call]
        addresses,
        min_other_sentinels=old.min_other_sentinels,
        sentinel_kwargs=timeouts | old.sentinel_kwargs,
        **kwargs,
    )
    return UnlockedSentinelPool(  # type: ignore[no-untyped-call]
        stock.service_name,
        manager,
        connection_class=stock.connection_class,
        max_connections=stock.max_connections,
        is_master=stock.is_master,
        check_connection=stock.check_connection,
        **kwargs,
    )

"""The tenant's runs by start time: two sorted sets, as their records live two retentions.

`keys.runs` holds every run but the webhooks' (RUN_RETENTION_SECONDS), `keys.webhook_runs` the
webhooks' (WEBHOOK_RUN_RETENTION_SECONDS): each is trimmed by score to its own retention as a
run joins it, so neither holds the id of a run whose record has expired. The readers of the
newest runs merge the two; the console's weekly table reads the first only (a webhook's hour
is an aggregate: app/store/webhook_hours.py).
"""

from __future__ import annotations

import heapq

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

from app.store import keys
from app.store.redis_text import as_text


def stage_add(
    pipe: Pipeline, tenant: str, run_id: str, *, webhook: bool, at: float, retention: int
) -> None:
    """A new run joins its index (`at`: its start, Unix time), which forgets the runs older
    than `retention`: their records have expired."""
    index = keys.webhook_runs(tenant) if webhook else keys.runs(tenant)
    pipe.zadd(index, {run_id: at})
    pipe.zremrangebyscore(index, "-inf", at - retention)
    pipe.expire(index, retention)


async def newest(redis: ArqRedis, tenant: str, limit: int) -> list[str]:
    """The newest run ids, webhooks' included, newest first: one round trip."""
    if limit <= 0:
        return []
    pipe = redis.pipeline(transaction=False)
    pipe.zrevrange(keys.runs(tenant), 0, limit - 1, withscores=True)
    pipe.zrevrange(keys.webhook_runs(tenant), 0, limit - 1, withscores=True)
    runs, webhooks = await pipe.execute()
    merged = heapq.merge(runs, webhooks, key=lambda pair: pair[1], reverse=True)
    return [as_text(run_id) for run_id, _ in list(merged)[:limit]]


async def between(redis: ArqRedis, tenant: str, start: float, end: float, limit: int) -> list[str]:
    """The ids of the runs other than webhooks' started within [start, end) (Unix times),
    newest first."""
    found = await redis.zrevrangebyscore(keys.runs(tenant), f"({end}", start, start=0, num=limit)
    return [as_text(r) for r in found]


async def forget(redis: ArqRedis, tenant: str, run_id: str) -> None:
    """A run whose record is gone leaves its index (whichever it is in)."""
    pipe = redis.pipeline(transaction=False)
    pipe.zrem(keys.runs(tenant), run_id)
    pipe.zrem(keys.webhook_runs(tenant), run_id)
    await pipe.execute()

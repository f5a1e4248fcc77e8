"""What the probes and the metrics endpoint ask of the state store."""

from __future__ import annotations

from redis.exceptions import RedisError

from app.service.resources import Resources
from app.store import keys, queue


async def store_ready(res: Resources) -> bool:
    """True when Redis answers a ping."""
    try:
        await res.redis.ping()
    except (RedisError, OSError):
        return False
    return True


def queue_name() -> str:
    """The queue the depth gauge is labelled with."""
    return keys.queue()


async def queue_depth(res: Resources) -> float:
    """How many jobs wait; NaN when Redis cannot say."""
    try:
        return float(await queue.depth(res.redis))
    except RedisError:
        return float("nan")

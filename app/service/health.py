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


async def queue_depths(res: Resources) -> dict[str, float]:
    """How many jobs wait in each queue (the live one, the runs'); NaN when Redis cannot say."""
    depths: dict[str, float] = {}
    for name in keys.queues():
        try:
            depths[name] = float(await queue.depth_of(res.redis, name))
        except RedisError:
            depths[name] = float("nan")
    return depths

"""What the periodic triggers keep: the poll watermark and the once-per-slot claims."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from arq.connections import ArqRedis

from app.store import keys
from app.store.redis_text import as_text_map

NIGHTLY_CLAIM_SECONDS = 3 * 24 * 3600


async def watermark(redis: ArqRedis, tenant: str) -> datetime | None:
    """The last poll's start: an instant (naive, the tenant's wall clock, from earlier versions)."""
    stored = await redis.get(keys.watermark(tenant))
    return datetime.fromisoformat(stored.decode()) if stored else None


async def last_read(redis: ArqRedis, tenant: str) -> dict[str, str]:
    """What the last poll read: user -> its `modifiedAt` then."""
    raw = await redis.hgetall(keys.poll_read(tenant))
    return as_text_map(raw)


async def set_watermark(
    redis: ArqRedis, tenant: str, at: datetime, read: Mapping[str, str]
) -> None:
    """The poll's start (an aware instant) and what it read, together."""
    pipe = redis.pipeline(transaction=True)
    pipe.set(keys.watermark(tenant), at.isoformat())
    pipe.delete(keys.poll_read(tenant))
    if read:
        pipe.hset(keys.poll_read(tenant), mapping=dict(read))
    await pipe.execute()


async def claim_nightly(redis: ArqRedis, tenant: str, slot: date) -> bool:
    """True for the first worker to ask for this night."""
    return bool(
        await redis.set(keys.nightly_claim(tenant, slot), b"1", nx=True, ex=NIGHTLY_CLAIM_SECONDS)
    )


async def claim_poll(redis: ArqRedis, tenant: str, interval_seconds: int) -> bool:
    """True for the first worker to ask within this poll interval."""
    return bool(await redis.set(keys.poll_slot(tenant), b"1", nx=True, ex=interval_seconds))

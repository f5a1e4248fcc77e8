"""What the periodic triggers keep: the poll watermark and the once-per-slot claims."""

from __future__ import annotations

from datetime import date, datetime

from arq.connections import ArqRedis

from app.store import keys

NIGHTLY_CLAIM_SECONDS = 3 * 24 * 3600


async def watermark(redis: ArqRedis, tenant: str) -> datetime | None:
    stored = await redis.get(keys.watermark(tenant))
    return datetime.fromisoformat(stored.decode()) if stored else None


async def set_watermark(redis: ArqRedis, tenant: str, at: datetime) -> None:
    await redis.set(keys.watermark(tenant), at.isoformat())


async def claim_nightly(redis: ArqRedis, tenant: str, slot: date) -> bool:
    """True for the first worker to ask for this night."""
    return bool(
        await redis.set(keys.nightly_claim(tenant, slot), b"1", nx=True, ex=NIGHTLY_CLAIM_SECONDS)
    )


async def claim_poll(redis: ArqRedis, tenant: str, interval_seconds: int) -> bool:
    """True for the first worker to ask within this poll interval."""
    return bool(await redis.set(keys.poll_slot(tenant), b"1", nx=True, ex=interval_seconds))

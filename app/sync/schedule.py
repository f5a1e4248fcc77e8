"""Effective dates: a contract that ends in the future is re-checked when it has ended."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.resources import Resources
from app.sync.context import TenantContext


def next_local_midnight_after(day: date, timezone: str) -> datetime:
    """00:00 in the tenant's zone on the day after `day` (a contract's last day)."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=ZoneInfo(timezone))


async def schedule_contract_ends(res: Resources, ctx: TenantContext, due: dict[str, date]) -> None:
    """Re-check each user when its contract has ended, without waiting for an event."""
    for user_id, last_day in due.items():
        at = next_local_midnight_after(last_day, ctx.config.timezone)
        await res.redis.enqueue_job(
            "sync_user_due",
            ctx.tenant,
            user_id,
            _job_id=f"due:{ctx.tenant}:{user_id}:{last_day.isoformat()}",
            _defer_until=at,
        )

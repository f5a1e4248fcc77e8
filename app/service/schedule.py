"""Effective dates: a contract that ends in the future is re-checked when it has ended."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.service.context import TenantContext
from app.service.jobs import schedule_due
from app.service.resources import Resources


def next_local_midnight_after(day: date, timezone: str) -> datetime:
    """00:00 in the tenant's zone on the day after `day` (a contract's last day)."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=ZoneInfo(timezone))


async def schedule_contract_ends(
    res: Resources, tenant_ctx: TenantContext, due: Mapping[str, date]
) -> None:
    """Re-check each user when its contract has ended, without waiting for an event."""
    for user_id, last_day in due.items():
        at = next_local_midnight_after(last_day, tenant_ctx.config.timezone)
        await schedule_due(res.redis, tenant_ctx.tenant, user_id, last_day, at)

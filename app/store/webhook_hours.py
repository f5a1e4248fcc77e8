"""The webhook runs of each hour, added up: what the console's runs table shows of them once
their records (kept WEBHOOK_RUN_RETENTION_SECONDS) are gone, for RUN_RETENTION_SECONDS.

One hash per tenant and UTC day (keys.webhook_hours): `HH:runs`, the webhook runs created in
that hour (written with the run, RunStore.stage), and `HH:<action>`, their users' outcomes
(written by the count script as it notes them, app/store/run_counts.py, so a count retried
adds nothing). A day holds a few fields per active hour, well under Redis' 128 of a compact
hash. It expires RUN_RETENTION_SECONDS after the end of its day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

from app.store import keys
from app.store.redis_text import as_text_map
from app.store.run_model import RUN_ID_TIME

RUNS = "runs"  # the field of an hour's run count (`HH:runs`); the others are outcomes


@dataclass(frozen=True, slots=True)
class HourSlot:
    """Where a webhook run's numbers go: its day's hash, its hour's fields, that hash's end."""

    key: str
    prefix: str  # "HH:"
    expire_at: int  # Unix time

    def field(self, name: str) -> str:
        return self.prefix + name


def created_at_of(run_id: str) -> datetime:
    """A run's creation time to the second, from its id (app/store/run_model.py `draft_run`:
    `YYYYmmddTHHMMSS-...`, UTC); now for an id of another form (tests, benchmarks)."""
    try:
        return datetime.strptime(run_id[:15], RUN_ID_TIME).replace(tzinfo=UTC)
    except ValueError:
        return datetime.now(UTC)


def slot(tenant: str, run_id: str, retention: int) -> HourSlot:
    """The hour a webhook run counts in: its creation's, as its id tells."""
    created = created_at_of(run_id)
    day_end = datetime.combine(created.date() + timedelta(days=1), datetime.min.time(), UTC)
    return HourSlot(
        keys.webhook_hours(tenant, created.date().isoformat()),
        f"{created.hour:02d}:",
        int(day_end.timestamp()) + retention,
    )


def stage_created(pipe: Pipeline, where: HourSlot) -> None:
    """A webhook run was created in this hour (its outcomes follow as they are counted)."""
    pipe.hincrby(where.key, where.field(RUNS), 1)
    pipe.expireat(where.key, where.expire_at)


@dataclass(slots=True)
class Hour:
    """One hour's webhook runs: how many, and their outcomes added up."""

    start: datetime
    runs: int = 0
    counts: dict[str, int] = field(default_factory=dict)


async def hours_between(redis: ArqRedis, tenant: str, start: float, end: float) -> list[Hour]:
    """The hours starting within [start, end) (Unix times) that saw webhook runs, newest
    first: one read of each UTC day's hash, in one round trip."""
    first = datetime.fromtimestamp(start, UTC).date()
    last = datetime.fromtimestamp(end, UTC).date()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    pipe = redis.pipeline(transaction=False)
    for day in days:
        pipe.hgetall(keys.webhook_hours(tenant, day.isoformat()))
    found: list[Hour] = []
    for day, raw in zip(days, await pipe.execute(), strict=True):
        found.extend(h for h in _hours(day, as_text_map(raw)) if start <= h.start.timestamp() < end)
    return sorted(found, key=lambda h: h.start, reverse=True)


def _hours(day: date, fields: dict[str, str]) -> Sequence[Hour]:
    by_hour: dict[int, Hour] = {}
    midnight = datetime.combine(day, datetime.min.time(), UTC)
    for name, value in fields.items():
        hour_text, _, what = name.partition(":")
        amount = int(value)
        if not hour_text.isdigit() or not what or not amount:
            continue
        hour = by_hour.setdefault(int(hour_text), Hour(midnight + timedelta(hours=int(hour_text))))
        if what == RUNS:
            hour.runs += amount
        else:
            hour.counts[what] = amount
    return [hour for hour in by_hour.values() if hour.runs or hour.counts]

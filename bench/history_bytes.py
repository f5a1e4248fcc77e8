"""What an employee's history weighs in Redis (`MEMORY USAGE`), as stored now (a string of
frames, app/store/history_blob.py) and as the list earlier versions wrote: after the first
sync's creation entry, after one change entry, and per nightly `skipped` of an excluded
employee. Entries are the service's own (app/core's decisions) for the employees of a
generated company; seconds of CPU.

    .venv/bin/python -m bench.history_bytes --redis-url redis://127.0.0.1:6379/11

It writes and then deletes keys of the tenant `bench-history` only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool

from app.core.decision import Action, Decision, decide, diff_attributes
from app.core.lucca_user import parse_user
from app.core.rules import Standing, desired_attributes
from app.store import history_format, keys
from app.store.records import Records
from app.store.run_model import RUN_ID_TIME, iso_ms
from simulators.lucca.generator import generate_company

TENANT = "bench-history"
NIGHT_ONE = datetime(2026, 12, 5, 2, tzinfo=UTC)


def _run_id(moment: datetime) -> str:
    return moment.strftime(RUN_ID_TIME) + "-" + uuid.uuid4().hex[:6]


def _entry(decision: Decision, at: datetime, run_start: datetime, written: bool) -> dict[str, Any]:
    """The entry outcomes.DecisionBatch.add builds."""
    return decision.plan_entry() | {
        "at": iso_ms(at),
        "run": _run_id(run_start),
        "written": written,
        "dry_run": False,
    }


def creations(size: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(desired profile, creation entry) of each employee the first sync creates; manager ids
    as fastscim makes them (a counter in a UUID's hex)."""
    company = generate_company("acme", size, seed=7, today=date(2026, 12, 5))
    found = []
    for n, item in enumerate(company.users()):
        user = parse_user(item)
        if user.user_name is None:
            continue
        manager = uuid.UUID(int=n + (1 << 64)).hex if user.manager_id else None
        desired = desired_attributes(
            user, custom_fields={}, manager_profile_id=manager, active=True
        )
        at = NIGHT_ONE + timedelta(seconds=n, milliseconds=37 * n)
        entry = _entry(decide(user.id, Standing.ACTIVE, desired, None), at, NIGHT_ONE, True)
        found.append((desired, entry))
    return found


def change_of(desired: dict[str, Any], day: int) -> dict[str, Any]:
    changed = desired | {"title": f"{desired.get('title') or ''} (senior)"}
    decision = Decision(
        desired["externalId"],
        Action.UPDATE,
        "synced fields differ",
        diff_attributes(changed, desired),
    )
    at = NIGHT_ONE + timedelta(days=day, hours=7)
    return _entry(decision, at, at - timedelta(seconds=1), True)


def skipped_of(user_id: str, night: int) -> dict[str, Any]:
    start = NIGHT_ONE + timedelta(days=night)
    decision = Decision(user_id, Action.SKIPPED, "excluded: profile not managed")
    return _entry(decision, start + timedelta(minutes=3), start, False)


async def _usage(redis: ArqRedis, key: str) -> int:
    return int(await redis.memory_usage(key, samples=0) or 0)


async def measure(redis: ArqRedis, employees: int, nights: int) -> dict[str, Any]:
    records = Records(redis, 30 * 86400)
    now: dict[str, list[int]] = {"creation": [], "change": [], "skipped": []}
    before: dict[str, list[int]] = {"creation": [], "change": [], "skipped": []}
    for desired, creation in creations(employees):
        user = desired["externalId"]
        key, old = keys.history(TENANT, user), keys.old_history(TENANT, user)
        await records.add(TENANT, user, creation, failing=None)
        await redis.lpush(old, history_format.pack(creation))
        now["creation"].append(await _usage(redis, key))
        before["creation"].append(await _usage(redis, old))
        change = change_of(desired, 1)
        await records.add(TENANT, user, change, failing=None)
        await redis.lpush(old, history_format.pack(change))
        now["change"].append(await _usage(redis, key) - now["creation"][-1])
        before["change"].append(await _usage(redis, old) - before["creation"][-1])
        # Then excluded: a `skipped` every night (the first opens a frame of its own).
        await records.add(TENANT, user, skipped_of(user, 2), failing=None)
        await redis.lpush(old, history_format.pack(skipped_of(user, 2)))
        start, start_old = await _usage(redis, key), await _usage(redis, old)
        for night in range(3, 3 + nights):
            await records.add(TENANT, user, skipped_of(user, night), failing=None)
            await redis.lpush(old, history_format.pack(skipped_of(user, night)))
        now["skipped"].append(await _usage(redis, key) - start)
        before["skipped"].append(await _usage(redis, old) - start_old)
        await redis.delete(key, old)

    def mean(values: list[int], per: int = 1) -> float:
        return round(statistics.mean(values) / per, 1)

    return {
        "employees": len(now["creation"]),
        "string": {
            "after_creation": mean(now["creation"]),
            "per_change": mean(now["change"]),
            "per_nightly_skipped": mean(now["skipped"], nights),
        },
        "old_list": {
            "after_creation": mean(before["creation"]),
            "per_change": mean(before["change"]),
            "per_nightly_skipped": mean(before["skipped"], nights),
        },
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--employees", type=int, default=200)
    parser.add_argument("--nights", type=int, default=30)
    args = parser.parse_args()
    redis = await create_pool(RedisSettings.from_dsn(args.redis_url))
    try:
        print(await measure(redis, args.employees, args.nights))
    finally:
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())

"""What the console reads of a run, row by row: each user's outcome, a dry run's plan, and
the history entry a real run left for each user it decided (its reason and diff)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from arq.connections import ArqRedis

from app.store import keys

# A user's history holds 200 entries; the one a recent run left is near the top.
HISTORY_LOOKBACK = 20


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def outcomes(redis: ArqRedis, tenant: str, run_id: str) -> dict[str, str]:
    """Lucca id -> the user's outcome in the run."""
    raw = await redis.hgetall(keys.run_users(tenant, run_id))
    return {_text(k): _text(v) for k, v in raw.items()}


async def errors(redis: ArqRedis, tenant: str, run_id: str) -> dict[str, str]:
    raw = await redis.hgetall(keys.run_errors(tenant, run_id))
    return {_text(k): _text(v) for k, v in raw.items()}


async def plan(redis: ArqRedis, tenant: str, run_id: str) -> dict[str, dict[str, Any]]:
    """A dry run's plan: Lucca id -> its entry (action, reason, diff)."""
    raw = await redis.hgetall(keys.run_plan(tenant, run_id))
    return {_text(k): orjson.loads(v) for k, v in raw.items()}


async def entries_of_run(
    redis: ArqRedis, tenant: str, run_id: str, user_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The history entry `run_id` left for each of these users, where one is still kept."""
    pipe = redis.pipeline(transaction=False)
    for user_id in user_ids:
        pipe.lrange(keys.history(tenant, user_id), 0, HISTORY_LOOKBACK - 1)
    found: dict[str, dict[str, Any]] = {}
    for user_id, raw in zip(user_ids, await pipe.execute(), strict=True):
        for item in raw:
            entry = orjson.loads(item)
            if entry.get("run") == run_id:
                found[user_id] = entry
                break
    return found


async def latest_entries(
    redis: ArqRedis, tenant: str, user_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Each user's newest history entry, where one is kept."""
    pipe = redis.pipeline(transaction=False)
    for user_id in user_ids:
        pipe.lindex(keys.history(tenant, user_id), 0)
    return {
        user_id: orjson.loads(raw)
        for user_id, raw in zip(user_ids, await pipe.execute(), strict=True)
        if raw is not None
    }


async def run_ids(redis: ArqRedis, tenant: str, limit: int) -> list[str]:
    """The newest run ids, newest first."""
    return [_text(r) for r in await redis.zrevrange(keys.runs(tenant), 0, limit - 1)]


async def failing_count(redis: ArqRedis, tenant: str) -> int:
    """How many users fail to sync now."""
    return int(await redis.hlen(keys.user_errors(tenant)))


async def snapshot_profiles(
    redis: ArqRedis, tenant: str, run_id: str, user_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The Elevo profile a reconciliation's snapshot holds for each of these users (the
    snapshot lives a day: an older run's people come back without theirs)."""
    if not user_ids:
        return {}
    profile_ids = await redis.hmget(keys.run_part(tenant, run_id, "by-ext"), list(user_ids))
    linked = {u: _text(p) for u, p in zip(user_ids, profile_ids, strict=True) if p is not None}
    if not linked:
        return {}
    raw = await redis.hmget(keys.run_part(tenant, run_id, "elevo"), list(linked.values()))
    found = dict(zip(linked.values(), raw, strict=True))
    return {u: orjson.loads(found[p]) for u, p in linked.items() if found.get(p) is not None}

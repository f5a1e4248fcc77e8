"""What the console reads of a run, row by row: each user's outcome, a dry run's plan, and
the history entry a real run left for each user it decided (its reason and diff)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import orjson
from arq.connections import ArqRedis

from app.store import history_blob, keys, run_index
from app.store.records import HISTORY_LENGTH, stage_history_read
from app.store.redis_text import COUNT_VALUES, as_text, as_text_map, value_counts
from app.store.run_end import INLINE_OUTCOMES, inline_outcomes, with_quiet

# A user's history holds 200 entries; the one a recent run left is near the top.
HISTORY_LOOKBACK = 20


async def headers_and_counts(
    redis: ArqRedis, tenant: str, run_ids: Sequence[str]
) -> list[tuple[dict[str, str], dict[str, int]]]:
    """Each run's stored fields and its count per outcome, in one round trip; a run that
    expired comes back with no fields."""
    # One MULTI: a run that ends meanwhile moves its unchanged outcomes from its users into a
    # count in its record, and the two reads must see the same side of each move.
    pipe = redis.pipeline(transaction=True)
    for run_id in run_ids:
        pipe.hgetall(keys.run(tenant, run_id))
        pipe.eval(COUNT_VALUES, 1, keys.run_users(tenant, run_id))
    answers = await pipe.execute()
    found = []
    for raw, flat in zip(answers[::2], answers[1::2], strict=True):
        fields = as_text_map(raw)
        found.append((fields, with_quiet(value_counts(flat), fields)))
    return found


async def outcomes(redis: ArqRedis, tenant: str, run_id: str) -> dict[str, str]:
    """Lucca id -> the user's outcome in the run (a real run that ended keeps no
    `unchanged` outcome: it only counts them; one that ended with a few keeps them in its
    record)."""
    pipe = redis.pipeline(transaction=False)
    pipe.hget(keys.run(tenant, run_id), INLINE_OUTCOMES)
    pipe.hgetall(keys.run_users(tenant, run_id))
    inline, raw = await pipe.execute()
    kept = inline_outcomes({INLINE_OUTCOMES: as_text(inline)} if inline else {})
    return kept | as_text_map(raw)


async def errors(redis: ArqRedis, tenant: str, run_id: str) -> dict[str, str]:
    raw = await redis.hgetall(keys.run_errors(tenant, run_id))
    return as_text_map(raw)


async def plan_entries(
    redis: ArqRedis, tenant: str, run_id: str, user_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """A dry run's plan entries (action, reason, diff) of these users."""
    if not user_ids:
        return {}
    raw = await redis.hmget(keys.run_plan(tenant, run_id), list(user_ids))
    return {u: orjson.loads(v) for u, v in zip(user_ids, raw, strict=True) if v is not None}


async def entries_of_run(
    redis: ArqRedis, tenant: str, run_id: str, user_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The history entry `run_id` left for each of these users, where one is still kept."""
    found: dict[str, dict[str, Any]] = {}
    for user_id, (blob, old) in await _histories(redis, tenant, user_ids, HISTORY_LOOKBACK):
        entry = history_blob.entry_of_run(blob, old, user_id, run_id, HISTORY_LOOKBACK)
        if entry is not None:
            found[user_id] = entry
    return found


async def latest_entries(
    redis: ArqRedis, tenant: str, user_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Each user's newest history entry, where one is kept."""
    found: dict[str, dict[str, Any]] = {}
    for user_id, (blob, old) in await _histories(redis, tenant, user_ids, 1):
        newest = next(history_blob.read(blob, old, user_id, 1), None)
        if newest is not None:
            found[user_id] = newest
    return found


async def latest_entries_of(
    redis: ArqRedis, tenant: str, user_ids: Sequence[str], actions: Collection[str]
) -> dict[str, dict[str, Any]]:
    """Each user's newest history entry of one of these actions, where one is kept."""
    found: dict[str, dict[str, Any]] = {}
    for user_id, (blob, old) in await _histories(redis, tenant, user_ids, 0):
        for entry in history_blob.read(blob, old, user_id, HISTORY_LENGTH):
            if entry.get("action") in actions:
                found[user_id] = entry
                break
    return found


async def _histories(
    redis: ArqRedis, tenant: str, user_ids: Sequence[str], newest: int
) -> list[tuple[str, tuple[bytes | None, list[bytes]]]]:
    """Each user's history blob and old list (its `newest` entries; 0: all), one round trip."""
    pipe = redis.pipeline(transaction=False)
    for user_id in user_ids:
        stage_history_read(pipe, tenant, user_id, newest)
    answers = await pipe.execute()
    return list(zip(user_ids, zip(answers[::2], answers[1::2], strict=True), strict=True))


async def run_ids(redis: ArqRedis, tenant: str, limit: int) -> list[str]:
    """The newest run ids, webhooks' included, newest first."""
    return await run_index.newest(redis, tenant, limit)


async def recent_times(redis: ArqRedis, tenant: str, limit: int) -> list[tuple[str, str, str]]:
    """(trigger, created_at, finished_at) of the newest runs, newest first ("" when unset)."""
    pipe = redis.pipeline(transaction=False)
    for run_id in await run_ids(redis, tenant, limit):
        pipe.hmget(keys.run(tenant, run_id), ["trigger", "created_at", "finished_at"])
    return [
        (as_text(t or b""), as_text(c or b""), as_text(f or b""))
        for t, c, f in await pipe.execute()
    ]


async def run_ids_between(
    redis: ArqRedis, tenant: str, start: float, end: float, limit: int
) -> list[str]:
    """The ids of the runs other than webhooks' started within [start, end) (Unix times),
    newest first (webhooks' are added up by the hour: app/store/webhook_hours.py)."""
    return await run_index.between(redis, tenant, start, end, limit)


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
    linked = {u: as_text(p) for u, p in zip(user_ids, profile_ids, strict=True) if p is not None}
    if not linked:
        return {}
    raw = await redis.hmget(keys.run_part(tenant, run_id, "elevo"), list(linked.values()))
    found = dict(zip(linked.values(), raw, strict=True))
    return {u: orjson.loads(found[p]) for u, p in linked.items() if found.get(p) is not None}

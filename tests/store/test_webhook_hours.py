"""A webhook's run: kept a shorter time than the others, in an index of its own, its hour's
numbers added up in a daily aggregate that outlives it (app/store/webhook_hours.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from arq.connections import ArqRedis

from app.store import keys, webhook_hours
from app.store.run_model import RunMode, RunState, Trigger, TriggerKind, draft_run
from app.store.runs import RunStore

RETENTION = 3600
WEBHOOK_RETENTION = 60
HOOK = Trigger.webhook("employee.updated")


def store(redis: ArqRedis) -> RunStore:
    return RunStore(redis, RETENTION, WEBHOOK_RETENTION)


async def webhook_run(runs: RunStore, expected: int = 1) -> str:
    return await runs.create("acme", draft_run(mode=RunMode.USERS, trigger=HOOK, expected=expected))


async def aggregate(redis: ArqRedis, run_id: str) -> dict[str, int]:
    """The fields of the run's hour in its day's aggregate, without the hour."""
    where = webhook_hours.slot("acme", run_id, RETENTION)
    raw = await redis.hgetall(where.key)
    return {
        k.decode().removeprefix(where.prefix): int(v)
        for k, v in raw.items()
        if k.decode().startswith(where.prefix)
    }


async def test_a_webhook_run_is_kept_the_shorter_time_and_a_full_run_the_longer(
    redis: ArqRedis,
) -> None:
    runs = store(redis)
    hook = await webhook_run(runs)
    full = await runs.create("acme", draft_run(mode=RunMode.FULL, trigger=Trigger(TriggerKind.API)))
    assert 0 < await redis.ttl(keys.run("acme", hook)) <= WEBHOOK_RETENTION
    assert WEBHOOK_RETENTION < await redis.ttl(keys.run("acme", full)) <= RETENTION
    # Each in its own index, each index as long as its runs.
    assert await redis.zrange(keys.webhook_runs("acme"), 0, -1) == [hook.encode()]
    assert await redis.zrange(keys.runs("acme"), 0, -1) == [full.encode()]
    assert 0 < await redis.ttl(keys.webhook_runs("acme")) <= WEBHOOK_RETENTION
    # What follows keeps the shorter time: a count that ends it, a state, an error.
    await runs.count("acme", hook, "7", "update")
    await runs.set_state("acme", hook, RunState.FAILED, error="late")
    await runs.note_error("acme", hook, "7", "boom")
    for key in (keys.run("acme", hook), keys.run_errors("acme", hook)):
        assert 0 < await redis.ttl(key) <= WEBHOOK_RETENTION
    await runs.count("acme", full, "7", "update")
    await runs.set_state("acme", full, RunState.DONE)
    assert WEBHOOK_RETENTION < await redis.ttl(keys.run("acme", full)) <= RETENTION
    # The hour's aggregate outlives the run: RUN_RETENTION_SECONDS after its day.
    where = webhook_hours.slot("acme", hook, RETENTION)
    assert await redis.ttl(where.key) > RETENTION
    assert await aggregate(redis, hook) == {"runs": 1, "update": 1}


async def test_a_retried_count_adds_nothing_to_the_hour(redis: ArqRedis) -> None:
    runs = store(redis)
    hook = await webhook_run(runs)
    await runs.count("acme", hook, "7", "update")  # ends the run: its outcome goes in its record
    assert not await redis.exists(keys.run_users("acme", hook))
    # The job retried after it counted finds its write done: "unchanged" hides nothing.
    await runs.count("acme", hook, "7", "unchanged")
    await runs.count("acme", hook, "7", "update")
    assert await aggregate(redis, hook) == {"runs": 1, "update": 1}
    report = await runs.report("acme", hook)
    assert report is not None
    assert report.counts == {"update": 1}


async def test_an_outcome_that_changes_moves_in_the_hour(redis: ArqRedis) -> None:
    runs = store(redis)
    hook = await webhook_run(runs, expected=2)
    await runs.count("acme", hook, "7", "unchanged")
    await runs.count("acme", hook, "7", "update")  # a later pass did more
    await runs.count("acme", hook, "8", "create")
    assert await aggregate(redis, hook) == {"runs": 1, "update": 1, "create": 1}
    found = await webhook_hours.hours_between(redis, "acme", 0, datetime.now(UTC).timestamp() + 1)
    assert [(h.runs, h.counts) for h in found] == [(1, {"update": 1, "create": 1})]


async def test_a_full_run_leaves_no_aggregate(redis: ArqRedis) -> None:
    runs = store(redis)
    full = await runs.create("acme", draft_run(mode=RunMode.FULL, trigger=Trigger(TriggerKind.API)))
    await runs.count("acme", full, "7", "update")
    assert await redis.keys("t:acme:webhook-hours:*") == []


def test_a_run_counts_in_the_hour_its_id_tells() -> None:
    where = webhook_hours.slot("acme", "20261205T154439-a1b2c3", RETENTION)
    assert where.key == "t:acme:webhook-hours:2026-12-05"
    assert where.prefix == "15:"
    assert where.expire_at == int(datetime(2026, 12, 6, tzinfo=UTC).timestamp()) + RETENTION

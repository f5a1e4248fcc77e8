"""The runs' two indexes: each trimmed to its runs' retention, read together
(app/store/run_index.py)."""

from __future__ import annotations

from arq.connections import ArqRedis

from app.store import keys, run_index

NOW = 1_800_000_000.0


async def add(redis: ArqRedis, run_id: str, *, webhook: bool, at: float, retention: int) -> None:
    pipe = redis.pipeline(transaction=True)
    run_index.stage_add(pipe, "acme", run_id, webhook=webhook, at=at, retention=retention)
    await pipe.execute()


async def test_a_webhook_run_leaves_its_index_once_its_record_expired(redis: ArqRedis) -> None:
    await add(redis, "full-old", webhook=False, at=NOW - 100, retention=3600)
    await add(redis, "hook-old", webhook=True, at=NOW - 100, retention=60)
    await add(redis, "hook-new", webhook=True, at=NOW, retention=60)
    await add(redis, "full-new", webhook=False, at=NOW, retention=3600)
    assert await redis.zrange(keys.webhook_runs("acme"), 0, -1) == [b"hook-new"]
    assert await redis.zrange(keys.runs("acme"), 0, -1) == [b"full-old", b"full-new"]


async def test_the_newest_runs_merge_both_indexes(redis: ArqRedis) -> None:
    for n, webhook in enumerate((False, True, True, False, True)):
        await add(redis, f"r{n}", webhook=webhook, at=NOW + n, retention=3600)
    assert await run_index.newest(redis, "acme", 3) == ["r4", "r3", "r2"]
    assert await run_index.newest(redis, "acme", 10) == ["r4", "r3", "r2", "r1", "r0"]
    # The weekly table's runs: webhooks' are counted by the hour, elsewhere.
    assert await run_index.between(redis, "acme", NOW, NOW + 10, 10) == ["r3", "r0"]
    await run_index.forget(redis, "acme", "r4")
    assert await run_index.newest(redis, "acme", 1) == ["r3"]

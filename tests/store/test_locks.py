"""One sync per user at a time, and a cooldown in which later notices collapse."""

from __future__ import annotations

import asyncio

from arq.connections import ArqRedis

from app.store.locks import FullRunLock, UserLock


async def test_a_second_holder_is_told_how_long_to_wait(redis: ArqRedis) -> None:
    first, second = UserLock(redis, "acme", "416"), UserLock(redis, "acme", "416")
    assert await first.acquire(5) == 0.0
    wait = await second.acquire(5)
    assert 4.0 < wait <= 5.0


async def test_release_keeps_the_key_for_the_rest_of_the_cooldown(redis: ArqRedis) -> None:
    lock = UserLock(redis, "acme", "416")
    await lock.acquire(30)
    await lock.release(cooldown_seconds=1.0)
    ttl_ms = await redis.pttl("t:acme:busy:416")
    assert 0 < ttl_ms <= 1000


async def test_release_after_the_cooldown_frees_the_user_at_once(redis: ArqRedis) -> None:
    lock = UserLock(redis, "acme", "416")
    await lock.acquire(30)
    await asyncio.sleep(0.05)
    await lock.release(cooldown_seconds=0.01)
    assert not await redis.exists("t:acme:busy:416")
    assert await UserLock(redis, "acme", "416").acquire(5) == 0.0


async def test_only_the_holder_may_release(redis: ArqRedis) -> None:
    holder, stranger = UserLock(redis, "acme", "416"), UserLock(redis, "acme", "416")
    await holder.acquire(30)
    await stranger.release(cooldown_seconds=0)
    assert await redis.pttl("t:acme:busy:416") > 20_000


async def test_users_and_tenants_do_not_share_locks(redis: ArqRedis) -> None:
    assert await UserLock(redis, "acme", "416").acquire(5) == 0.0
    assert await UserLock(redis, "acme", "417").acquire(5) == 0.0
    assert await UserLock(redis, "globex", "416").acquire(5) == 0.0


async def test_only_the_running_full_run_frees_the_tenant(redis: ArqRedis) -> None:
    lock = FullRunLock(redis)
    assert await lock.claim("acme", "run-a") is None
    assert await lock.claim("acme", "run-b") == "run-a"
    await lock.release("acme", "run-b")  # a run that never held it (a dry run, a merged one)
    assert await lock.holder("acme") == "run-a"
    await lock.release("acme", "run-a")
    assert await lock.holder("acme") is None

"""One sync per user at a time, and a cooldown in which later notices collapse."""

from __future__ import annotations

import asyncio

from arq.connections import ArqRedis

from app.store import keys
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


async def acquire_current(lock: UserLock, redis: ArqRedis, generation: int) -> float | None:
    pipe = redis.pipeline(transaction=False)
    lock.stage_acquire_current(pipe, 5, generation)
    (answer,) = await pipe.execute()
    return lock.read_acquired_current(answer)


async def test_the_job_of_the_newest_notice_takes_the_lock(redis: ArqRedis) -> None:
    await redis.set(keys.gen("acme", "416"), 3)
    lock = UserLock(redis, "acme", "416")
    assert await acquire_current(lock, redis, 3) == 0.0
    assert await redis.get(keys.busy("acme", "416")) is not None
    holder_wait = await acquire_current(UserLock(redis, "acme", "416"), redis, 3)
    assert holder_wait is not None
    assert 4.0 < holder_wait <= 5.0


async def test_a_superseded_job_never_takes_the_lock(redis: ArqRedis) -> None:
    await redis.set(keys.gen("acme", "416"), 4)
    assert await acquire_current(UserLock(redis, "acme", "416"), redis, 3) is None
    assert await redis.get(keys.busy("acme", "416")) is None


async def test_a_user_never_noticed_is_taken(redis: ArqRedis) -> None:
    assert await acquire_current(UserLock(redis, "acme", "416"), redis, 1) == 0.0


async def test_a_release_staged_with_the_last_writes_is_not_sent_again(redis: ArqRedis) -> None:
    lock = UserLock(redis, "acme", "416")
    await lock.acquire(30)
    pipe = redis.pipeline(transaction=True)
    lock.stage_release(pipe, cooldown_seconds=1.0)
    await pipe.execute()
    assert 0 < await redis.pttl("t:acme:busy:416") <= 1000  # into its cooldown
    await redis.delete("t:acme:busy:416")
    taken = UserLock(redis, "acme", "416")
    assert await taken.acquire(30) == 0.0
    await lock.release(cooldown_seconds=0.0)  # the job's `finally`: a no-op now
    assert await redis.get("t:acme:busy:416") is not None

"""Notice numbers: each notice's generation is the tenant's next number, so a reconciliation
that noted the number before its Lucca read knows who was noticed after it."""

from __future__ import annotations

from arq.connections import ArqRedis

from app.store import keys, queue


async def test_generations_follow_the_tenants_notice_sequence(redis: ArqRedis) -> None:
    assert await queue.bump_generations(redis, "acme", ["416", "417"], None) == [1, 1]
    mark = await queue.notice_mark(redis, "acme")
    assert await queue.bump_generations(redis, "acme", ["417"], None) == [2]
    assert not await queue.noticed_after(redis, "acme", "416", mark)
    assert await queue.noticed_after(redis, "acme", "417", mark)
    assert not await queue.noticed_after(redis, "acme", "999", mark)  # never noticed
    assert await queue.bump_generations(redis, "other", ["416"], None) == [1]  # its own


async def test_a_generation_counted_per_user_by_an_older_version_never_goes_down(
    redis: ArqRedis,
) -> None:
    await redis.set(keys.gen("acme", "416"), 57)
    assert await queue.bump_generations(redis, "acme", ["416"], None) == [58]
    assert await queue.notice_mark(redis, "acme") == 58
    assert await queue.bump_generations(redis, "acme", ["417"], None) == [59]


async def test_a_duplicate_notice_bumps_nothing(redis: ArqRedis) -> None:
    assert await queue.bump_generations(redis, "acme", ["416"], ("mark", 60)) == [1]
    assert await queue.bump_generations(redis, "acme", ["416"], ("mark", 60)) is None
    assert await queue.notice_mark(redis, "acme") == 1

"""Notice numbers: each change notice takes the tenant's next number, so a reconciliation
that noted the number before its Lucca read knows who was noticed after it; generations stay
per user."""

from __future__ import annotations

from arq.connections import ArqRedis

from app.store import queue


async def test_each_notice_takes_the_tenants_next_number(redis: ArqRedis) -> None:
    assert await queue.bump_generations(redis, "acme", ["416", "417"], None) == [1, 1]
    mark = await queue.notice_mark(redis, "acme")
    assert mark == 1
    assert await queue.bump_generations(redis, "acme", ["417"], None) == [2]  # per user
    assert not await queue.noticed_after(redis, "acme", "416", mark)
    assert await queue.noticed_after(redis, "acme", "417", mark)
    assert not await queue.noticed_after(redis, "acme", "999", mark)  # never noticed
    assert await queue.notice_mark(redis, "other") == 0  # each tenant its own


async def test_a_duplicate_notice_takes_no_number(redis: ArqRedis) -> None:
    assert await queue.bump_generations(redis, "acme", ["416"], ("mark", 60)) == [1]
    assert await queue.bump_generations(redis, "acme", ["416"], ("mark", 60)) is None
    assert await queue.notice_mark(redis, "acme") == 1

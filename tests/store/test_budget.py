"""The Lucca budget: one token bucket per tenant in Redis, shared by every process."""

from __future__ import annotations

import pytest
from arq.connections import ArqRedis

from app.store.budget import LuccaBudget, bucket_capacity


@pytest.mark.parametrize(("per_minute", "capacity"), [(40, 10), (50, 12), (4, 1), (1, 1)])
def test_the_burst_is_a_quarter_minute_of_the_share(per_minute: int, capacity: int) -> None:
    assert bucket_capacity(per_minute) == capacity


async def test_a_full_bucket_grants_its_capacity_then_asks_to_wait(redis: ArqRedis) -> None:
    budget = LuccaBudget(redis)
    waits = [await budget.take("acme", 40) for _ in range(11)]
    assert waits[:10] == [0.0] * 10
    # 40 per minute: one token every 1.5 s.
    assert 1.0 < waits[10] <= 1.5


async def test_two_processes_share_one_bucket(redis: ArqRedis) -> None:
    first, second = LuccaBudget(redis), LuccaBudget(redis)
    granted = [await (first if i % 2 else second).take("acme", 40) for i in range(12)]
    assert granted.count(0.0) == 10


async def test_tenants_have_buckets_of_their_own(redis: ArqRedis) -> None:
    budget = LuccaBudget(redis)
    for _ in range(10):
        await budget.take("acme", 40)
    assert await budget.take("acme", 40) > 0
    assert await budget.take("globex", 40) == 0.0


async def test_a_429_cools_the_whole_tenant_down(redis: ArqRedis) -> None:
    budget = LuccaBudget(redis)
    await budget.cool_down("acme", 7)
    wait = await budget.take("acme", 40)
    assert 6.0 < wait <= 7.0
    assert await budget.take("globex", 40) == 0.0


async def test_an_override_replaces_every_tenants_share(redis: ArqRedis) -> None:
    budget = LuccaBudget(redis, override=6000)
    waits = [await budget.take("acme", 1) for _ in range(1000)]
    assert waits.count(0.0) >= 1000 - 5


async def test_a_revoked_key_flag_reads_back(redis: ArqRedis) -> None:
    budget = LuccaBudget(redis)
    assert await budget.revoked("acme") is None
    await redis.set("t:acme:lucca-revoked", "401 from Lucca")
    assert await budget.revoked("acme") == "401 from Lucca"

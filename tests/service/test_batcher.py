"""Per-tenant batching of Lucca reads, the shared read cache, and the budget's effect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import orjson
import pytest
from arq.connections import ArqRedis

from app.clients.errors import LuccaAuthError
from app.clients.lucca import LuccaBatch, LuccaClient
from app.secret import Secret
from app.service.batcher import LuccaBatcher, LuccaThrottled
from app.store import keys
from app.store.budget import LuccaBudget, Priority
from app.store.read_cache import LuccaReadCache
from tests.factories import make_lucca_item


class FakeLucca:
    """Answers `id=` requests with one item per id, and remembers every request."""

    def __init__(self) -> None:
        self.requests: list[list[str]] = []
        self.status = 200

    def __call__(self, request: httpx.Request) -> httpx.Response:
        ids = request.url.params["id"].split(",")
        self.requests.append(ids)
        if self.status != 200:
            return httpx.Response(self.status, headers={"Retry-After": "9"}, json={})
        items = [make_lucca_item(id=int(i), mail=f"u{i}@acme.test") for i in ids]
        return httpx.Response(200, content=orjson.dumps({"data": {"items": items}}))


@pytest.fixture
def lucca() -> FakeLucca:
    return FakeLucca()


@pytest.fixture
async def client(lucca: FakeLucca) -> AsyncIterator[LuccaClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lucca)) as http:
        yield LuccaClient(
            http, "http://lucca.test/acme", Secret("k"), fields="id", skip_field="e_skip_elevo_sync"
        )


def batcher(redis: ArqRedis, window: float = 0.01) -> LuccaBatcher:
    return LuccaBatcher(LuccaBudget(redis), LuccaReadCache(redis), window=window)


async def test_concurrent_jobs_of_a_tenant_share_one_request(
    redis: ArqRedis, client: LuccaClient, lucca: FakeLucca
) -> None:
    # Wide enough for all 50 asks to land in one window, even slowed by coverage's tracing.
    shared = batcher(redis, window=0.5)
    ids = [str(i) for i in range(1, 51)]
    batches = await asyncio.gather(
        *(shared.fetch("acme", client, 40, uid, priority=Priority.LIVE) for uid in ids)
    )
    assert len(lucca.requests) == 1
    assert sorted(lucca.requests[0], key=int) == ids
    assert all(uid in batch.users for uid, batch in zip(ids, batches, strict=True))


async def test_a_read_serves_later_jobs_until_a_newer_notice(
    redis: ArqRedis, client: LuccaClient, lucca: FakeLucca
) -> None:
    await redis.set("t:acme:gen:7", 3)
    await batcher(redis).fetch("acme", client, 40, "7", priority=Priority.LIVE)
    again = await batcher(redis).fetch(
        "acme", client, 40, "7", priority=Priority.LIVE
    )  # another process
    assert len(lucca.requests) == 1
    assert "7" in again.users
    await redis.incr("t:acme:gen:7")  # a notice after the read: the read is stale
    await batcher(redis).fetch("acme", client, 40, "7", priority=Priority.LIVE)
    assert len(lucca.requests) == 2


async def test_a_spent_budget_defers_and_the_next_request_serves_the_deferred(
    redis: ArqRedis, client: LuccaClient, lucca: FakeLucca
) -> None:
    shared = batcher(redis)
    budget = LuccaBudget(redis)
    while await budget.take(client.base_url, 40, priority=Priority.LIVE) == 0:
        pass
    with pytest.raises(LuccaThrottled) as throttled:
        await shared.fetch("acme", client, 40, "5", priority=Priority.LIVE)
    assert throttled.value.wait > 0
    assert lucca.requests == []
    # The window moves on, the bucket refills.
    await redis.delete(keys.lucca_requests(client.base_url), keys.lucca_bucket(client.base_url))
    await shared.fetch("acme", client, 40, "6", priority=Priority.LIVE)
    assert sorted(lucca.requests[0]) == ["5", "6"]  # the deferred user rode along
    deferred = await shared.fetch("acme", client, 40, "5", priority=Priority.LIVE)
    assert "5" in deferred.users
    assert len(lucca.requests) == 1


async def test_a_429_pauses_the_host_and_is_a_wait_for_the_jobs(
    redis: ArqRedis, client: LuccaClient, lucca: FakeLucca
) -> None:
    lucca.status = 429
    with pytest.raises(LuccaThrottled) as throttled:
        await batcher(redis).fetch("acme", client, 40, "5", priority=Priority.LIVE)
    assert throttled.value.wait == 9.0
    assert 8000 < await redis.pttl(keys.lucca_pause(client.base_url)) <= 9000
    lucca.status = 200
    with pytest.raises(LuccaThrottled):  # another process, another tenant on that host
        await batcher(redis).fetch("globex", client, 40, "6", priority=Priority.LIVE)
    assert len(lucca.requests) == 1


async def test_one_live_ask_makes_the_whole_batch_live(
    redis: ArqRedis, client: LuccaClient, lucca: FakeLucca
) -> None:
    budget = LuccaBudget(redis)
    while await budget.take(client.base_url, 40, priority=Priority.BACKGROUND) == 0:
        pass  # background work takes what it may: the rest is live work's
    shared = batcher(redis, window=0.5)
    with pytest.raises(LuccaThrottled):
        await shared.fetch("acme", client, 40, "5", priority=Priority.BACKGROUND)
    batches = await asyncio.gather(
        shared.fetch("acme", client, 40, "6", priority=Priority.BACKGROUND),
        shared.fetch("acme", client, 40, "7", priority=Priority.LIVE),
    )
    assert all(batch.users for batch in batches)
    assert len(lucca.requests) == 1


async def test_a_flagged_key_is_not_used(
    redis: ArqRedis, client: LuccaClient, lucca: FakeLucca
) -> None:
    await redis.set("t:acme:lucca-revoked", "Lucca answered 401")
    with pytest.raises(LuccaAuthError, match="not calling Lucca"):
        await batcher(redis).fetch("acme", client, 40, "5", priority=Priority.LIVE)
    assert lucca.requests == []


class GatedLucca(FakeLucca):
    """Holds the first request until `release` is set: a request in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.first_arrived = asyncio.Event()

    async def handle(self, request: httpx.Request) -> httpx.Response:
        first = not self.requests
        response = self(request)
        if first:
            self.first_arrived.set()
            await self.release.wait()
        return response


@dataclass
class InFlight:
    """A batcher whose first request (user 1) is on its way and held there."""

    lucca: GatedLucca
    client: LuccaClient
    batcher: LuccaBatcher
    first: asyncio.Future[LuccaBatch] = field(init=False)

    def ask(self, user_id: str) -> asyncio.Future[LuccaBatch]:
        return asyncio.ensure_future(
            self.batcher.fetch("acme", self.client, 40, user_id, priority=Priority.LIVE)
        )


async def first_in_flight(redis: ArqRedis, hold: float) -> InFlight:
    lucca = GatedLucca()
    http = httpx.AsyncClient(transport=httpx.MockTransport(lucca.handle))
    client = LuccaClient(
        http, "http://lucca.test/acme", Secret("k"), fields="id", skip_field="e_skip_elevo_sync"
    )
    batcher = LuccaBatcher(LuccaBudget(redis), LuccaReadCache(redis), window=0.001, hold=hold)
    flight = InFlight(lucca, client, batcher)
    flight.first = flight.ask("1")
    await asyncio.wait_for(lucca.first_arrived.wait(), 10)
    return flight


async def test_asks_made_while_a_request_is_in_flight_share_the_next_one(
    redis: ArqRedis,
) -> None:
    flight = await first_in_flight(redis, hold=30.0)
    # Each of these asks comes after the last one's window closed: without the flight they
    # would make four requests.
    later = []
    for uid in ("2", "3", "4", "5"):
        later.append(flight.ask(uid))
        await asyncio.sleep(0.01)
    assert len(flight.lucca.requests) == 1
    flight.lucca.release.set()
    batches = await asyncio.wait_for(asyncio.gather(flight.first, *later), 10)
    assert flight.lucca.requests == [["1"], ["2", "3", "4", "5"]]
    assert [sorted(batch.users) for batch in batches[1:]] == [["2", "3", "4", "5"]] * 4


async def test_a_request_in_flight_holds_the_next_batch_no_longer_than_the_hold(
    redis: ArqRedis,
) -> None:
    flight = await first_in_flight(redis, hold=0.05)
    # The first request hangs; the second goes once the hold is over, not after it.
    second = await asyncio.wait_for(flight.ask("2"), 10)
    assert "2" in second.users
    assert flight.lucca.requests == [["1"], ["2"]]
    flight.lucca.release.set()
    assert "1" in (await asyncio.wait_for(flight.first, 10)).users


async def test_a_process_working_through_a_backlog_batches_over_the_busy_window(
    redis: ArqRedis, client: LuccaClient, lucca: FakeLucca
) -> None:
    shared = LuccaBatcher(
        LuccaBudget(redis), LuccaReadCache(redis), window=0.001, busy_window=0.5, busy_span=60.0
    )

    async def two_asks_apart() -> None:
        later = asyncio.ensure_future(
            shared.fetch("acme", client, 40, "101", priority=Priority.LIVE)
        )
        await asyncio.sleep(0.05)  # far past the usual window
        second = shared.fetch("acme", client, 40, "102", priority=Priority.LIVE)
        await asyncio.wait_for(asyncio.gather(later, second), 60)

    # Quiet: two asks 50 ms apart make two requests.
    await two_asks_apart()
    assert lucca.requests == [["101"], ["102"]]
    # A backlog (ten asks within the span, generous here: a slow machine is still within
    # it), then the same two share one request.
    burst = [str(n) for n in range(1, 11)]
    await asyncio.gather(
        *(shared.fetch("acme", client, 40, uid, priority=Priority.LIVE) for uid in burst)
    )
    await redis.delete(keys.lucca_read("acme", "101"), keys.lucca_read("acme", "102"))
    lucca.requests.clear()
    await two_asks_apart()
    assert lucca.requests == [["101", "102"]]

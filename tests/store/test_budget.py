"""The Lucca budget: a sliding window per Lucca host in Redis, shared by every process."""

from __future__ import annotations

import asyncio
import time

from arq.connections import ArqRedis

from app.store import keys
from app.store.budget import BudgetWindow, ElevoPause, LuccaBudget, Priority

HOST = "https://acme.ilucca.net"
LIVE, BACKGROUND = Priority.LIVE, Priority.BACKGROUND
# Windows of 1 s, counted for 1.2 s; no spreading (the whole budget may go at once).
SHORT = BudgetWindow(seconds=1.0, margin=0.2, burst=1.0, live_reserve=0.2)
WHOLE = BudgetWindow(burst=1.0)


async def test_a_quarter_of_the_budget_goes_at_once_the_rest_evenly(redis: ArqRedis) -> None:
    budget = LuccaBudget(redis)
    waits = [await budget.take(HOST, 40, priority=LIVE) for _ in range(11)]
    assert waits[:10] == [0.0] * 10
    # 40 per 61 s (60 and the 1 s margin): one request every 1.525 s.
    assert 1.0 < waits[10] <= 1.53


async def test_the_window_caps_what_the_bucket_would_allow(redis: ArqRedis) -> None:
    budget = LuccaBudget(redis, window=WHOLE)
    waits = [await budget.take(HOST, 40, priority=LIVE) for _ in range(41)]
    assert waits[:40] == [0.0] * 40
    # The first request leaves the window 61 s after it was granted.
    assert 60.0 < waits[40] <= 61.0


async def test_a_slot_comes_back_only_when_its_request_leaves_the_window(
    redis: ArqRedis,
) -> None:
    budget = LuccaBudget(redis, window=SHORT)
    started = time.monotonic()
    granted: list[float] = []
    while len(granted) < 12:
        wait = await budget.take(HOST, 4, priority=LIVE)
        if wait == 0:
            granted.append(time.monotonic() - started)
        else:
            await asyncio.sleep(wait)
    # Never more than 4 in any 1.2 s: the 5th of a run of grants is 1.2 s after the 1st.
    for first, fifth in zip(granted, granted[4:], strict=False):
        assert fifth - first >= 1.2 - 0.01


async def test_background_work_leaves_a_reserve_for_live_work(redis: ArqRedis) -> None:
    budget = LuccaBudget(redis, window=WHOLE)
    background = [await budget.take(HOST, 40, priority=BACKGROUND) for _ in range(33)]
    assert background[:32] == [0.0] * 32  # 20% of 40 stays for live syncs
    assert background[32] > 0
    live = [await budget.take(HOST, 40, priority=LIVE) for _ in range(9)]
    assert live[:8] == [0.0] * 8
    assert live[8] > 0


async def test_background_work_leaves_live_work_a_share_of_the_burst(redis: ArqRedis) -> None:
    budget = LuccaBudget(redis)
    background = [await budget.take(HOST, 40, priority=BACKGROUND) for _ in range(9)]
    assert background[:8] == [0.0] * 8  # 2 of the burst of 10 stay for live syncs
    assert background[8] > 0
    assert [await budget.take(HOST, 40, priority=LIVE) for _ in range(2)] == [0.0, 0.0]


async def test_processes_and_tenants_on_one_host_share_its_window(redis: ArqRedis) -> None:
    first, second = LuccaBudget(redis, window=WHOLE), LuccaBudget(redis, window=WHOLE)
    granted = [
        await (first if i % 2 else second).take(HOST, 40, priority=LIVE, tenant=f"t{i % 3}")
        for i in range(45)
    ]
    assert granted.count(0.0) == 40
    assert await first.take("https://globex.ilucca.net", 40, priority=LIVE) == 0.0


async def test_the_window_survives_a_restart(redis: ArqRedis) -> None:
    for _ in range(40):
        await LuccaBudget(redis, window=WHOLE).take(HOST, 40, priority=LIVE)
    # A new process.
    assert await LuccaBudget(redis, window=WHOLE).take(HOST, 40, priority=LIVE) > 59.0


async def test_a_429_pauses_the_host_for_every_process(redis: ArqRedis) -> None:
    budget = LuccaBudget(redis)
    await budget.pause(HOST, 7)
    assert 6.0 < await LuccaBudget(redis).take(HOST, 40, priority=LIVE) <= 7.0
    assert 6.0 < await budget.paused_for(HOST) <= 7.0
    assert await budget.take("https://globex.ilucca.net", 40, priority=LIVE) == 0.0
    assert await redis.zcard(keys.lucca_requests(HOST)) == 0  # a paused ask takes nothing


async def test_an_override_replaces_every_tenants_share(redis: ArqRedis) -> None:
    budget = LuccaBudget(redis, override=6000)
    waits = [await budget.take(HOST, 1, priority=LIVE) for _ in range(1000)]
    assert waits.count(0.0) == 1000


async def test_a_revoked_key_flag_reads_back(redis: ArqRedis) -> None:
    budget = LuccaBudget(redis)
    assert await budget.revoked("acme") is None
    await redis.set("t:acme:lucca-revoked", "401 from Lucca")
    assert await budget.revoked("acme") == "401 from Lucca"


async def test_an_elevo_pause_is_the_tenants_own(redis: ArqRedis) -> None:
    pause = ElevoPause(redis)
    assert (await pause.remaining("acme"))[0] == 0.0
    await pause.pause("acme", 0.2)  # at least a second
    seconds, why = await pause.remaining("acme")
    assert 0.9 < seconds <= 1.0
    assert why == "429"
    assert (await pause.remaining("globex"))[0] == 0.0


async def test_requests_left_unanswered_pause_the_tenants_elevo_past_a_count(
    redis: ArqRedis,
) -> None:
    pause = ElevoPause(redis)
    for _ in range(4):
        assert await pause.note_unanswered("acme", within=30, threshold=5, pause=10) == 0.0
    assert (await pause.remaining("acme"))[0] == 0.0
    assert 9.0 < await pause.note_unanswered("acme", within=30, threshold=5, pause=10) <= 10.0
    seconds, why = await pause.remaining("acme")
    assert (9.0 < seconds <= 10.0, why) == (True, "unanswered")
    assert (await pause.remaining("globex"))[0] == 0.0
    assert await redis.get(keys.elevo_unanswered("acme")) is None  # counting afresh


async def test_an_unanswered_count_never_shortens_a_longer_429_pause(redis: ArqRedis) -> None:
    pause = ElevoPause(redis)
    await pause.pause("acme", 60)
    for _ in range(5):  # each one answers the 429's pause: a stalled write waits as long
        assert await pause.note_unanswered("acme", within=30, threshold=5, pause=10) > 50
    seconds, why = await pause.remaining("acme")
    assert (seconds > 50, why) == (True, "429")

"""What waits for a tenant-level reason: the parked employees (bounded, by reason), the pause,
and the probes' backoff."""

from __future__ import annotations

import pytest
from arq.connections import ArqRedis

from app.store import keys, parked
from app.store.parked import ParkedUsers, ProbeBackoff, TenantPause

AT = "2026-01-01T00:00:00.000Z"


async def test_parked_employees_are_counted_and_taken_by_reason(redis: ArqRedis) -> None:
    store = ParkedUsers(redis, "acme")
    assert await store.park(["1", "2"], "elevo_token", AT) == 2
    assert await store.park(["3"], "paused", "2026-01-02T00:00:00.000Z") == 1
    assert await store.park(["2"], "paused", "2026-01-03T00:00:00.000Z") == 1  # the later wins
    assert await store.counts() == {
        "elevo_token": (1, AT),
        "paused": (2, "2026-01-02T00:00:00.000Z"),
    }
    taken = await store.take("paused")
    assert sorted(taken.user_ids) == ["2", "3"]
    assert not taken.overflowed
    assert await store.counts() == {"elevo_token": (1, AT)}
    assert 0 < await redis.ttl(keys.parked("acme")) <= parked.PARKED_SECONDS


async def test_past_the_bound_a_reason_overflows_instead_of_growing(
    redis: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parked, "MAX_PARKED", 2)
    store = ParkedUsers(redis, "acme")
    assert await store.park(["1", "2", "3"], "lucca_key", AT) == 2
    assert await store.park(["1"], "lucca_key", AT) == 1  # one already kept is updated
    assert await redis.hlen(keys.parked("acme")) == 2
    taken = await store.take("lucca_key")
    assert taken.overflowed  # whoever clears it runs a full reconciliation
    assert await store.counts() == {}


async def test_a_pause_keeps_its_first_author_and_the_runs_asked_meanwhile(
    redis: ArqRedis,
) -> None:
    pause = TenantPause(redis, "acme")
    assert not await pause.note_pending(full=True)  # not paused: nothing kept
    first = await pause.pause("alice", AT, "audit")
    second = await pause.pause("bob", "2026-01-02T00:00:00.000Z", None)
    assert second == first
    assert await pause.note_pending(full=False)
    lifted = await pause.resume()
    assert lifted is not None
    assert (lifted.by, lifted.reason, lifted.pending_full, lifted.pending_changes) == (
        "alice",
        "audit",
        False,
        True,
    )
    assert await pause.get() is None
    assert await pause.resume() is None


async def test_probes_back_off_exponentially_to_a_cap(redis: ArqRedis) -> None:
    backoff = ProbeBackoff(redis, "acme", "elevo_token")
    delays = []
    for _ in range(4):
        assert await backoff.due(10, 30)
        assert not await backoff.due(10, 30)
        delays.append(await redis.pttl(keys.probe("acme", "elevo_token")))
        await redis.delete(keys.probe("acme", "elevo_token"))  # the delay passes
    assert [round(d / 1000) for d in delays] == [10, 20, 30, 30]
    await backoff.reset()
    assert await backoff.due(10, 30)
    assert round(await redis.pttl(keys.probe("acme", "elevo_token")) / 1000) == 10

"""Which worker runs which job: a job whose runner's heartbeat lapsed is freed, no other."""

from __future__ import annotations

import asyncio

import pytest
from arq.connections import ArqRedis

from app.store import keys
from app.store.running_jobs import RunningJobs
from tests.fakes import RoundTrips

HELD_MS = 130_000  # ARQ's in-progress mark: the largest job timeout + 10 s


async def _running(redis: ArqRedis, runner: RunningJobs, job_id: str) -> None:
    await redis.set(keys.in_progress(job_id), "1", px=HELD_MS)
    await runner.started(job_id)


async def test_the_jobs_of_a_worker_whose_heartbeat_lapsed_are_freed(redis: ArqRedis) -> None:
    dead, alive = RunningJobs(redis, "dead"), RunningJobs(redis, "alive")
    await alive.beat(30)
    await _running(redis, dead, "sync:acme:1:1")
    await _running(redis, alive, "sync:acme:2:1")

    assert await alive.reap() == ["sync:acme:1:1"]  # "dead" never beat (or its beat lapsed)
    assert not await redis.exists(keys.in_progress("sync:acme:1:1"))
    assert await redis.exists(keys.in_progress("sync:acme:2:1"))  # its own, and alive
    assert await redis.hgetall(keys.running_jobs()) == {b"sync:acme:2:1": b"alive"}
    assert await RunningJobs(redis, "third").reap() == []  # "alive" still beats


async def test_a_live_runner_and_an_ended_job_are_left_alone(redis: ArqRedis) -> None:
    first, second = RunningJobs(redis, "first"), RunningJobs(redis, "second")
    await first.beat(30)
    await _running(redis, first, "sync:acme:1:1")
    assert await second.reap() == []
    assert await redis.exists(keys.in_progress("sync:acme:1:1"))

    await first.ended("sync:acme:1:1")
    await first.stopped()  # a clean shutdown: no heartbeat, and nothing of its to free
    assert await redis.hlen(keys.running_jobs()) == 0
    assert await second.reap() == []


async def test_a_job_id_taken_up_again_by_another_runner_is_not_freed(redis: ArqRedis) -> None:
    dead, alive = RunningJobs(redis, "dead"), RunningJobs(redis, "alive")
    await alive.beat(30)
    await _running(redis, dead, "reconcile_page:acme:run:2")
    await _running(redis, alive, "reconcile_page:acme:run:2")  # ARQ's mark expired; run again
    await dead.ended("reconcile_page:acme:run:2")  # the dead one's late end removes nothing
    assert await RunningJobs(redis, "third").reap() == []
    assert await redis.exists(keys.in_progress("reconcile_page:acme:run:2"))


async def test_jobs_starting_or_ending_together_are_recorded_in_one_round_trip(
    redis: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = RunningJobs(redis, "busy")
    ids = [f"sync:acme:{n}:1" for n in range(50)]
    round_trips = RoundTrips()
    with round_trips.counting(monkeypatch):
        await asyncio.gather(*(runner.started(job_id) for job_id in ids))
    assert round_trips.sent == 1
    assert await redis.hlen(keys.running_jobs()) == 50

    with round_trips.counting(monkeypatch):
        await asyncio.gather(*(runner.ended(job_id) for job_id in ids[:49]))
    assert round_trips.sent == 1
    assert await redis.hgetall(keys.running_jobs()) == {ids[49].encode(): b"busy"}


async def test_a_job_started_and_ended_in_the_same_turn_is_not_left_recorded(
    redis: ArqRedis,
) -> None:
    runner = RunningJobs(redis, "busy")
    await asyncio.gather(runner.started("sync:acme:1:1"), runner.ended("sync:acme:1:1"))
    assert await redis.hlen(keys.running_jobs()) == 0

"""The runs' queue: the `worker:` process serves it beside the live queue unless a
`worker-runs:` process announces itself; either way every queued step runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.worker import Worker

from app.service import jobs
from app.service.resources import Resources
from app.store import keys, queue
from tests.factories import TENANT
from workers.closing import close_worker
from workers.runs_queue import ANNOUNCE_TTL_SECONDS, StandbyRunsWorker
from workers.worker import runs_worker_options, worker_options

Start = Callable[[dict[str, Any]], Worker]


@pytest.fixture
async def start(res: Resources) -> AsyncIterator[Start]:
    """Start ARQ workers with the given options over the test's resources; closed after."""
    running: list[tuple[Worker, asyncio.Task[None]]] = []

    def make(options: dict[str, Any]) -> Worker:
        options = options | {"poll_delay": 0.01}
        worker = Worker(
            **options, ctx={"resources": res, "owns_resources": False}, handle_signals=False
        )
        running.append((worker, asyncio.create_task(worker.async_run())))
        return worker

    yield make
    for worker, task in running:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await close_worker(worker)


async def queue_step(redis: ArqRedis) -> None:
    """A step of a run that is gone: it runs, does nothing, and leaves no result."""
    await jobs.enqueue_poll(redis, TENANT, "no-such-run")


async def drained(redis: ArqRedis, name: str, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await redis.zcard(name) == 0:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_the_steps_of_runs_wait_in_their_own_queue(redis: ArqRedis) -> None:
    await queue_step(redis)
    await jobs.enqueue_reconcile_step(redis, jobs.Job.RECONCILE_PAGE, TENANT, "r", 0)
    await jobs.enqueue_user_syncs(redis, TENANT, ["416"])
    assert await redis.zcard(keys.runs_queue()) == 2
    assert await redis.zcard(keys.queue()) == 1
    assert await queue.depth(redis) == 3


async def test_the_worker_line_alone_runs_the_steps_of_runs(res: Resources, start: Start) -> None:
    start(worker_options(res.settings))
    await queue_step(res.redis)
    assert await drained(res.redis, keys.runs_queue())


async def test_the_worker_line_leaves_the_steps_to_an_announced_runs_worker(
    res: Resources, start: Start
) -> None:
    await queue.announce_runs_worker(res.redis, ANNOUNCE_TTL_SECONDS)
    worker = start(worker_options(res.settings))
    await queue_step(res.redis)
    assert not await drained(res.redis, keys.runs_queue(), within=0.5)

    # The runs worker is gone (stopped, or its announcement lapsed): the worker line takes over.
    await queue.retire_runs_worker(res.redis)
    standby: StandbyRunsWorker = worker.ctx["runs_standby"]
    await standby.look()
    assert await drained(res.redis, keys.runs_queue())


async def test_a_runs_worker_announces_itself_while_it_serves_the_queue(
    res: Resources, start: Start
) -> None:
    worker = start(runs_worker_options(res.settings))
    await queue_step(res.redis)
    assert await drained(res.redis, keys.runs_queue())
    assert await queue.runs_worker_alive(res.redis)
    assert 0 < await res.redis.ttl(keys.runs_worker()) <= ANNOUNCE_TTL_SECONDS

    await close_worker(worker)
    assert not await queue.runs_worker_alive(res.redis)

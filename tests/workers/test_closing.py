"""Closing a worker whose job was cancelled before arq's own handler could record it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq.worker import Worker, func

from app.service.resources import Resources, redis_settings
from workers.closing import close_worker

HEALTH_KEY = "test:closing:health-check"


async def _idle(ctx: dict[Any, Any]) -> None:
    return None


@pytest.fixture
async def stuck_worker(res: Resources) -> AsyncIterator[tuple[Worker, list[str]]]:
    """A worker that polled once, holding a job task that ends cancelled when cancelled (as
    one does while arq still reads its payload); the list says whether on_shutdown ran."""
    shut_down: list[str] = []

    async def on_shutdown(ctx: dict[Any, Any]) -> None:
        shut_down.append("on_shutdown")

    worker = Worker(
        functions=[func(_idle, name="idle")],
        redis_settings=redis_settings(res.settings),
        queue_name="test:closing:queue",
        health_check_key=HEALTH_KEY,
        on_shutdown=on_shutdown,
        handle_signals=False,
        poll_delay=0.01,
    )
    main = asyncio.create_task(worker.async_run())
    for _ in range(500):
        if await res.redis.exists(HEALTH_KEY):
            break
        await asyncio.sleep(0.01)
    assert await res.redis.exists(HEALTH_KEY), "the worker never polled"
    main.cancel()
    await asyncio.gather(main, return_exceptions=True)
    worker.tasks["stuck"] = asyncio.create_task(asyncio.Event().wait())
    yield worker, shut_down
    await res.redis.delete(HEALTH_KEY)


async def test_arq_alone_stops_closing_at_such_a_job(
    res: Resources, stuck_worker: tuple[Worker, list[str]]
) -> None:
    worker, shut_down = stuck_worker
    with pytest.raises(asyncio.CancelledError):
        await worker.close()  # why close_worker exists; if arq changes, this says so
    assert shut_down == []
    assert await res.redis.exists(HEALTH_KEY)
    await close_worker(worker)  # and it finishes what arq left
    assert shut_down == ["on_shutdown"]


async def test_close_worker_cancels_its_jobs_and_closes_it_whole(
    res: Resources, stuck_worker: tuple[Worker, list[str]]
) -> None:
    worker, shut_down = stuck_worker
    stuck = worker.tasks["stuck"]
    await close_worker(worker)
    assert stuck.cancelled()
    assert worker.tasks == {}
    assert shut_down == ["on_shutdown"]
    assert not await res.redis.exists(HEALTH_KEY)  # the health key went, then the pool

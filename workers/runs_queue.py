"""Who serves the runs' queue (app/service/jobs.py `RUN_STEPS`).

A process of the Procfile's `worker-runs:` line serves it alone and announces itself in Redis.
The `worker:` process serves it too, beside its live queue, but only while no such process is
announced: alone, it still runs every job; with a `worker-runs:` process, the steps of runs
(seconds of CPU each) leave its event loop to the live jobs, and the OS shares the cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from arq.worker import Worker

from app.service.resources import Resources
from app.store import keys, queue
from app.store.pool import unlock_pool
from workers.closing import close_worker

log = logging.getLogger(__name__)

# A dedicated process renews its announcement this often; the announcement outlives a few
# missed renewals (an event loop busy with a page), then the `worker:` process takes over.
ANNOUNCE_SECONDS = 5.0
ANNOUNCE_TTL_SECONDS = 30
# How often the `worker:` process looks whether a dedicated process serves the queue.
LOOK_SECONDS = 5.0


async def _unlock(ctx: dict[Any, Any]) -> None:
    await unlock_pool(ctx["redis"])


def _every(seconds: float, action: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
    async def loop() -> None:
        while True:
            try:
                await action()
            except Exception:  # Redis away for a moment: the next round tries again
                log.warning("runs queue: %s failed", action.__name__, exc_info=True)
            await asyncio.sleep(seconds)

    return asyncio.create_task(loop())


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _said_if_failed(task: asyncio.Task[None]) -> None:
    # Nobody awaits this task until shutdown: a failure would otherwise go unseen.
    if not task.cancelled() and task.exception() is not None:
        log.error("runs queue: no longer served here", exc_info=task.exception())


class StandbyRunsWorker:
    """The runs' queue served inside the `worker:` process, standing by while a dedicated
    process is announced (it then picks no job; the ones it runs finish)."""

    def __init__(
        self, options: dict[str, Any], resources: Resources, shared: dict[str, Any] | None = None
    ) -> None:
        self._redis = resources.redis
        self.worker = Worker(
            **options,
            queue_name=keys.runs_queue(),
            # Its own health key: the queue's own says that a dedicated process is alive.
            health_check_key=keys.runs_standby_health(),
            cron_jobs=[],
            on_startup=_unlock,
            on_shutdown=None,
            ctx={"resources": resources, "owns_resources": False, **(shared or {})},
            handle_signals=False,
        )
        self._looking: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.look()
        self.worker.main_task = asyncio.create_task(self.worker.main())
        self.worker.main_task.add_done_callback(_said_if_failed)
        self._looking = _every(LOOK_SECONDS, self.look)

    async def look(self) -> None:
        dedicated = await queue.runs_worker_alive(self._redis)
        if dedicated == self.worker.allow_pick_jobs:
            log.info("runs queue: %s", "left to worker-runs" if dedicated else "served here")
        self.worker.allow_pick_jobs = not dedicated

    async def aclose(self) -> None:
        if self._looking is not None:
            await _stop(self._looking)
        await close_worker(self.worker)  # cancels its running jobs: ARQ queues them again


class Announcement:
    """A dedicated `worker-runs:` process, announced while it lives."""

    def __init__(self, resources: Resources) -> None:
        self._redis = resources.redis
        self._task: asyncio.Task[None] | None = None

    async def renew(self) -> None:
        await queue.announce_runs_worker(self._redis, ANNOUNCE_TTL_SECONDS)

    def start(self) -> None:
        self._task = _every(ANNOUNCE_SECONDS, self.renew)

    async def aclose(self) -> None:
        if self._task is not None:
            await _stop(self._task)
        with contextlib.suppress(Exception):  # else it expires on its own
            await queue.retire_runs_worker(self._redis)

"""The worker's heartbeat: a dead worker's jobs run again within seconds, not 130 s.

See app/store/running_jobs.py. Every process beats, records the jobs it starts, and frees
the jobs of the processes whose heartbeat lapsed (a killed worker, or one that exited while
Redis was away).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from redis.exceptions import RedisError

from app.store.running_jobs import RunningJobs

log = logging.getLogger(__name__)

# ARQ's cron jobs keep their in-progress mark a minute after they end, on purpose (one run
# per minute across workers): never freed early.
_CRON_PREFIX = "cron:"
BEATS_PER_LAPSE = 4


async def start(ctx: dict[Any, Any], lapse_seconds: float) -> None:
    running = RunningJobs(ctx["redis"], uuid.uuid4().hex)
    ctx["running_jobs"] = running
    await running.beat(lapse_seconds)
    ctx["heartbeat"] = asyncio.create_task(_beat_and_reap(running, lapse_seconds))


async def stop(ctx: dict[Any, Any]) -> None:
    task: asyncio.Task[None] | None = ctx.pop("heartbeat", None)
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with contextlib.suppress(RedisError, OSError):
        await ctx["running_jobs"].stopped()


async def job_started(ctx: dict[Any, Any]) -> None:
    running: RunningJobs | None = ctx.get("running_jobs")
    if running is not None and not ctx["job_id"].startswith(_CRON_PREFIX):
        await running.started(ctx["job_id"])


async def job_ended(ctx: dict[Any, Any]) -> None:
    running: RunningJobs | None = ctx.get("running_jobs")
    if running is not None and not ctx["job_id"].startswith(_CRON_PREFIX):
        await running.ended(ctx["job_id"])


async def _beat_and_reap(running: RunningJobs, lapse_seconds: float) -> None:
    while True:
        await asyncio.sleep(lapse_seconds / BEATS_PER_LAPSE)
        try:
            await running.beat(lapse_seconds)
            freed = await running.reap()
        except (RedisError, OSError) as exc:  # Redis away: ARQ's own loop reports it
            log.warning("worker heartbeat failed: %s", exc)
            continue
        if freed:
            log.warning("freed %d jobs of a worker that died: %s", len(freed), freed[:10])

"""When each run last moved on, for the watchdog that fails the stalled ones.

A run's `progress_at` is set by every outcome it counts, every step that ends, and every wait
for a tenant-level reason; a run that shows what it is `waiting` for is never stalled.
"""

from __future__ import annotations

from datetime import datetime

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

from app.store import keys, run_index
from app.store.redis_text import as_text
from app.store.run_model import RunState, utcnow_iso

# Only on a run under way: an expired or purged run is not brought back, and one that ended
# keeps no `progress_at` (set_state drops it; a webhook's run is kept 3 days).
_PROGRESS = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' or state == 'running' then
  redis.call('HSET', KEYS[1], 'progress_at', ARGV[1])
end
return 0
"""
_FIELDS = ("state", "created_at", "started_at", "progress_at", "waiting")
_UNDER_WAY = {RunState.QUEUED, RunState.RUNNING}


def stage_progress(pipe: Pipeline, tenant: str, run_id: str) -> None:
    """The run moved on: the watchdog measures a stall from the newest of these."""
    pipe.eval(_PROGRESS, 1, keys.run(tenant, run_id), utcnow_iso())


async def note_progress(redis: ArqRedis, tenant: str, run_id: str) -> None:
    pipe = redis.pipeline(transaction=False)
    stage_progress(pipe, tenant, run_id)
    await pipe.execute()


async def stalled(redis: ArqRedis, tenant: str, since: datetime, *, among: int = 20) -> list[str]:
    """The tenant's newest runs, still queued or running, with no progress since `since`; a
    run that shows what it is `waiting` for is not stalled (its wait is noted as progress)."""
    run_ids = await run_index.newest(redis, tenant, among)
    pipe = redis.pipeline(transaction=False)
    for run_id in run_ids:
        pipe.hmget(keys.run(tenant, run_id), list(_FIELDS))
    found = []
    for run_id, values in zip(run_ids, await pipe.execute(), strict=True):
        state, *times, waiting = map(as_text, values)
        if state not in _UNDER_WAY:
            continue
        if waiting:
            await note_progress(redis, tenant, run_id)
        elif max(times) and datetime.fromisoformat(max(times).replace("Z", "+00:00")) < since:
            found.append(run_id)
    return found

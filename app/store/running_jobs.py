"""Which worker process runs which job, so that a dead worker's jobs run again within seconds.

ARQ marks a running job with `arq:in-progress:<id>`, kept for the largest job timeout plus
10 s (130 s here) and naming no owner: a worker killed (SIGKILL, the OOM killer, a lost host)
or one that exits when Redis goes away holds its jobs that long. Each worker process keeps a
heartbeat key alive and records the jobs it runs; any worker that finds a job whose runner's
heartbeat has lapsed removes the job's in-progress mark, and ARQ's next poll starts it again
(a job stays in ARQ's queue until it ends). A worker merely stalled past its heartbeat may
see a job run twice: every job is idempotent and an employee's writes go under its UserLock.
"""

from __future__ import annotations

import asyncio

from arq.connections import ArqRedis

from app.store import keys
from app.store.redis_text import as_text_map

# Only the jobs still recorded as this runner's: one that ended (and the id taken by a later
# job on another worker) is left alone. KEYS: running, the runner's heartbeat, the job's
# in-progress mark. ARGV: job id, runner.
_REAP = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return redis.call('DEL', KEYS[3])
"""

# ARGV: the runner, then the ids of the jobs it ended.
_END = """
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return 0
"""


class RunningJobs:
    """The jobs each live worker process runs, and the heartbeat that says it lives."""

    def __init__(self, redis: ArqRedis, worker_id: str) -> None:
        self._redis = redis
        self.worker_id = worker_id
        # Starts and ends noted in the same turn of the event loop share one round trip: a
        # poll starts many jobs, and a burst ends many (two round trips per job otherwise).
        self._starts: list[str] = []
        self._ends: list[str] = []
        self._write: asyncio.Future[None] | None = None

    async def beat(self, lapse_seconds: float) -> None:
        """This worker lives; without another beat it counts as dead after `lapse_seconds`."""
        ttl_ms = max(1, int(lapse_seconds * 1000))
        await self._redis.set(keys.worker_alive(self.worker_id), "1", px=ttl_ms)

    async def started(self, job_id: str) -> None:
        """Recorded before the job runs (with the others noted meanwhile)."""
        self._starts.append(job_id)
        await self._written()

    async def ended(self, job_id: str) -> None:
        self._ends.append(job_id)
        await self._written()

    async def _written(self) -> None:
        if self._write is None:
            self._write = asyncio.ensure_future(self._write_soon())
        # Shielded: one job cancelled does not cancel the write the others wait for.
        await asyncio.shield(self._write)

    async def _write_soon(self) -> None:
        await asyncio.sleep(0)  # the jobs starting or ending in this turn join the write
        self._write = None
        starts, ends = self._starts, self._ends
        self._starts, self._ends = [], []
        pipe = self._redis.pipeline(transaction=False)
        if starts:
            pipe.hset(keys.running_jobs(), mapping=dict.fromkeys(starts, self.worker_id))
        if ends:  # after the starts: a job that started and ended meanwhile is gone
            pipe.eval(_END, 1, keys.running_jobs(), self.worker_id, *ends)
        await pipe.execute()

    async def stopped(self) -> None:
        """A clean shutdown: ARQ has ended or given back every job; the heartbeat goes."""
        await self._redis.delete(keys.worker_alive(self.worker_id))

    async def reap(self) -> list[str]:
        """Free the jobs whose runner's heartbeat lapsed; the ids whose mark went."""
        running = as_text_map(await self._redis.hgetall(keys.running_jobs()))
        others = sorted({runner for runner in running.values() if runner != self.worker_id})
        pipe = self._redis.pipeline(transaction=False)
        for runner in others:  # a few processes, whatever the jobs: one round trip
            pipe.exists(keys.worker_alive(runner))
        alive = {
            runner for runner, found in zip(others, await pipe.execute(), strict=True) if found
        }
        freed = []
        for job_id, runner in running.items():
            if runner == self.worker_id or runner in alive:
                continue
            # Checked again in the script: the runner may have beaten, or the job ended, since.
            marks = [keys.running_jobs(), keys.worker_alive(runner), keys.in_progress(job_id)]
            if await self._redis.eval(_REAP, 3, *marks, job_id, runner):
                freed.append(job_id)
        return freed

"""Putting per-user sync jobs on the queue: ids only, one job per change notice."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from arq.connections import ArqRedis
from arq.constants import default_queue_name, job_key_prefix
from arq.jobs import serialize_job
from redis.asyncio.client import Pipeline

from app.serialization import job_serializer
from app.sync import keys

SYNC_USER = "sync_user"
JOB_EXPIRY_MS = 24 * 3600 * 1000  # ARQ's own default: a job not started in a day expires


# The notice's dedupe mark and its generations in one step: a duplicate bumps nothing (a bumped
# generation without its job would make the queued job stand down for a change never queued).
_ACCEPT = """
if ARGV[1] ~= '' then
  if not redis.call('SET', ARGV[1], '1', 'NX', 'EX', ARGV[2]) then return false end
end
local generations = {}
for i = 1, #KEYS do generations[i] = redis.call('INCR', KEYS[i]) end
return generations
"""

Stage = Callable[[Pipeline], None]


async def enqueue_user_syncs(
    redis: ArqRedis,
    tenant: str,
    user_ids: Iterable[str],
    *,
    run_id: str | None = None,
    defer_seconds: float | None = None,
    dedupe: tuple[str, int] | None = None,
    also: Stage | None = None,
) -> int | None:
    """Queue one sync per user; how many were queued, or None for a duplicate notice.

    Each notice bumps the user's generation and queues a job under its own id, so a notice
    that lands while an earlier job is queued or running is never refused by ARQ's
    `_job_id` dedupe; the older job sees a newer generation and stands down. Two round trips
    whatever the number of users: the dedupe mark and the generations (a script), then the
    jobs with whatever `also` stages (the run record), in one transaction. The job ids are
    new by construction, so ARQ's WATCH/EXISTS dance is not needed.
    """
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return 0
    mark, ttl = dedupe if dedupe is not None else ("", 0)
    generations = await redis.eval(
        _ACCEPT, len(ids), *(keys.gen(tenant, uid) for uid in ids), mark, str(ttl)
    )
    if generations is None:
        return None
    now_ms = int(time.time() * 1000)
    score = now_ms + int((defer_seconds or 0) * 1000)
    pipe = redis.pipeline(transaction=True)
    if also is not None:
        also(pipe)
    for user_id, generation in zip(ids, generations, strict=True):
        job_id = f"sync:{tenant}:{user_id}:{generation}"
        payload = serialize_job(
            SYNC_USER,
            (tenant, user_id, int(generation), run_id),
            {},
            None,
            now_ms,
            serializer=job_serializer,
        )
        pipe.psetex(job_key_prefix + job_id, score - now_ms + JOB_EXPIRY_MS, payload)
        pipe.zadd(default_queue_name, {job_id: score})
    await pipe.execute()
    return len(ids)

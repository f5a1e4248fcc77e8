"""The low-level job writes: generations, dedupe marks and ARQ job records.

This module knows how a job is written, never which jobs exist (app/service/jobs.py does).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from arq.connections import ArqRedis
from arq.jobs import serialize_job
from redis.asyncio.client import Pipeline

from app.serialization import job_serializer
from app.store import keys

JOB_EXPIRY_MS = 24 * 3600 * 1000  # ARQ's own default: a job not started in a day expires
# A generation outlives every job that carries it; a user it forgot starts again from 1.
GENERATION_SECONDS = 2 * JOB_EXPIRY_MS // 1000


# The notice's dedupe mark and its generations in one step: a duplicate bumps nothing (a bumped
# generation without its job would make the queued job stand down for a change never queued).
# Each notice also takes the tenant's next notice number, noted per user: a reconciliation
# that noted the number before reading Lucca knows, by comparing, who was noticed after its
# read. KEYS: the users' generations, then their notice numbers, then the tenant's sequence.
_ACCEPT = """
if ARGV[1] ~= '' then
  if not redis.call('SET', ARGV[1], '1', 'NX', 'EX', ARGV[2]) then return false end
end
local users = (#KEYS - 1) / 2
local number = redis.call('INCR', KEYS[#KEYS])
local generations = {}
for i = 1, users do
  generations[i] = redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], ARGV[3])
  redis.call('SET', KEYS[users + i], number, 'EX', ARGV[3])
end
return generations
"""

Stage = Callable[[Pipeline], None]


async def bump_generations(
    redis: ArqRedis, tenant: str, user_ids: Sequence[str], dedupe: tuple[str, int] | None
) -> list[int] | None:
    """Each user's new generation, or None when the dedupe mark says the notice is a duplicate."""
    mark, ttl = dedupe if dedupe is not None else ("", 0)
    notice_keys = [
        *(keys.gen(tenant, uid) for uid in user_ids),
        *(keys.noticed(tenant, uid) for uid in user_ids),
        keys.notice_sequence(tenant),
    ]
    generations = await redis.eval(
        _ACCEPT, len(notice_keys), *notice_keys, mark, str(ttl), str(GENERATION_SECONDS)
    )
    if generations is None:
        return None
    return [int(generation) for generation in generations]


async def latest_generation(redis: ArqRedis, tenant: str, user_id: str) -> int | None:
    return read_generation(await redis.get(keys.gen(tenant, user_id)))


def stage_latest_generation(pipe: Pipeline, tenant: str, user_id: str) -> None:
    """`latest_generation` in a pipeline; `read_generation` reads its answer."""
    pipe.get(keys.gen(tenant, user_id))


def read_generation(answer: bytes | None) -> int | None:
    return None if answer is None else int(answer)


async def notice_mark(redis: ArqRedis, tenant: str) -> int:
    """The tenant's notice number now: noted before a Lucca read, it tells later which users
    were noticed after that read began (`noticed_after`)."""
    return int(await redis.get(keys.notice_sequence(tenant)) or 0)


async def noticed_after(redis: ArqRedis, tenant: str, user_id: str, mark: int) -> bool:
    """True when a change notice for the user came after `mark` (its job reads Lucca anew)."""
    number = await redis.get(keys.noticed(tenant, user_id))
    return number is not None and int(number) > mark


async def write_jobs(
    redis: ArqRedis,
    function: str,
    jobs: Sequence[tuple[str, tuple[Any, ...]]],
    *,
    defer_seconds: float | None = None,
    also: Stage | None = None,
) -> None:
    """Write (job id, arguments) jobs of one function, with `also`, in one transaction.

    The job ids must be new (ARQ's WATCH/EXISTS dance is skipped): a caller that cannot
    promise that uses `enqueue`.
    """
    now_ms = int(time.time() * 1000)
    score = now_ms + int((defer_seconds or 0) * 1000)
    pipe = redis.pipeline(transaction=True)
    if also is not None:
        also(pipe)
    for job_id, args in jobs:
        payload = serialize_job(function, args, {}, None, now_ms, serializer=job_serializer)
        pipe.psetex(keys.job(job_id), score - now_ms + JOB_EXPIRY_MS, payload)
        pipe.zadd(keys.queue(), {job_id: score})
    await pipe.execute()


async def enqueue(
    redis: ArqRedis,
    function: str,
    *args: Any,
    job_id: str | None = None,
    defer_until: datetime | None = None,
    queue_name: str | None = None,
) -> None:
    """One job through ARQ (which refuses a job id already queued, in any queue: the id's
    record is shared)."""
    await redis.enqueue_job(
        function,
        *args,
        _job_id=job_id,
        _defer_until=defer_until,
        _queue_name=queue_name or keys.queue(),
    )


async def depth(redis: ArqRedis) -> int:
    """How many jobs are queued, in every queue."""
    pipe = redis.pipeline(transaction=False)
    for name in keys.queues():
        pipe.zcard(name)
    return sum(int(count) for count in await pipe.execute())


async def depth_of(redis: ArqRedis, name: str) -> int:
    """How many jobs are queued in one queue."""
    return int(await redis.zcard(name))


async def tenant_depth(redis: ArqRedis, tenant: str) -> int:
    """How many of the queued jobs are the tenant's (their ids name it)."""
    count = 0
    for name in keys.queues():
        async for member, _ in redis.zscan_iter(
            name, match=keys.tenant_job_pattern(tenant), count=1000
        ):
            job_id = member.decode() if isinstance(member, bytes) else str(member)
            count += keys.job_tenant(job_id) == tenant
    return count


async def announce_runs_worker(redis: ArqRedis, ttl_seconds: int) -> None:
    """A process serving the runs' queue alone is alive (for `ttl_seconds`)."""
    await redis.set(keys.runs_worker(), b"1", ex=ttl_seconds)


async def retire_runs_worker(redis: ArqRedis) -> None:
    await redis.delete(keys.runs_worker())


async def runs_worker_alive(redis: ArqRedis) -> bool:
    return bool(await redis.exists(keys.runs_worker()))


async def forget_mark(redis: ArqRedis, mark: str) -> None:
    await redis.delete(mark)


async def set_mark(redis: ArqRedis, mark: str, ttl_seconds: int) -> bool:
    """Set a dedupe mark; False when it was already set."""
    return bool(await redis.set(mark, b"1", nx=True, ex=ttl_seconds))

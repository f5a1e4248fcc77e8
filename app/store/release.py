"""A tenant's disconnection in Redis: which release run frees its profiles, and how it goes.

Layout (app/store/keys.py): `release` a hash with `run` (the release run's id), `state`
(`disconnecting` while it runs, `failed` once it gave up), `error` (why it failed),
`released:{sweep}` (profiles released by each sweep over Elevo's listing). The hash lives
beside the tenant's config, outside its sync state: a release deletes it last, once the config
and the state are gone, so a crash before that is finished by the job's next try.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from arq.connections import ArqRedis

from app.store import keys
from app.store.redis_text import as_text


class ReleaseState(StrEnum):
    DISCONNECTING = "disconnecting"  # the release runs: webhooks ignored, runs refused
    FAILED = "failed"  # the release gave up: the tenant stays, disconnected, until retried


@dataclass(frozen=True, slots=True)
class ReleaseMark:
    run: str
    state: ReleaseState
    error: str | None = None


# One release at a time: a second ask while one runs gets that run's id, not a new run.
_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'disconnecting' then return redis.call('HGET', KEYS[1], 'run') end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'run', ARGV[1], 'state', 'disconnecting')
return ARGV[1]
"""


class ReleaseMarks:
    def __init__(self, redis: ArqRedis) -> None:
        self._redis = redis

    async def get(self, tenant: str) -> ReleaseMark | None:
        raw = await self._redis.hmget(keys.release(tenant), ["run", "state", "error"])
        if raw[0] is None or raw[1] is None:
            return None
        error = as_text(raw[2]) if raw[2] is not None else None
        return ReleaseMark(as_text(raw[0]), ReleaseState(as_text(raw[1])), error)

    async def claim(self, tenant: str, run_id: str) -> str:
        """Mark the tenant disconnecting by this run; the id of the release that runs (this
        one, or the one that ran already)."""
        return as_text(await self._redis.eval(_CLAIM, 1, keys.release(tenant), run_id))

    async def fail(self, tenant: str, run_id: str, error: str) -> None:
        """The release gave up; only if it is still this run's (a newer one may have begun)."""
        key = keys.release(tenant)
        if as_text(await self._redis.hget(key, "run") or b"") == run_id:
            await self._redis.hset(
                key, mapping={"state": ReleaseState.FAILED.value, "error": error}
            )

    async def add_released(self, tenant: str, sweep: int, count: int) -> None:
        await self._redis.hincrby(keys.release(tenant), f"released:{sweep}", count)

    async def released(self, tenant: str, sweep: int) -> int:
        return int(await self._redis.hget(keys.release(tenant), f"released:{sweep}") or 0)

    async def clear(self, tenant: str) -> None:
        await self._redis.delete(keys.release(tenant))

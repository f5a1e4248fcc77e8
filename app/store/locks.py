"""Locks: one sync at a time per user (with a cooldown in which later notices collapse), and
one full reconciliation at a time per tenant."""

from __future__ import annotations

import secrets
import time
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

from app.store import keys

# Only the holder may shorten or drop the key: compare its token first.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  local keep = tonumber(ARGV[2])
  if keep > 0 then redis.call('PEXPIRE', KEYS[1], keep) else redis.call('DEL', KEYS[1]) end
  return 1
end
return 0
"""

# Taken only by a job whose notice is still the newest: a superseded job never holds the user
# (not even for a round trip) against the job that supersedes it. Answers -1 when a newer
# notice came (the lock untried), 0 when taken, else the holder's remaining milliseconds.
_ACQUIRE_CURRENT = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > tonumber(ARGV[1]) then return -1 end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 0 end
return math.max(1, redis.call('PTTL', KEYS[2]))
"""


class UserLock:
    def __init__(self, redis: ArqRedis, tenant: str, user_id: str) -> None:
        self._redis = redis
        self._tenant = tenant
        self._user_id = user_id
        self._key = keys.busy(tenant, user_id)
        self._token = secrets.token_hex(8)
        self._since = 0.0
        self._released = False

    async def acquire(self, hold_seconds: float) -> float:
        """0 when acquired, else seconds until the current holder's hold ends."""
        if await self._redis.set(self._key, self._token, nx=True, px=_ms(hold_seconds)):
            return self._taken()
        return _remaining(int(await self._redis.pttl(self._key)))

    def stage_acquire_current(self, pipe: Pipeline, hold_seconds: float, generation: int) -> None:
        """`acquire` in the caller's round trip, for the job of notice `generation`: taken
        only if no newer notice of the user came; `read_acquired_current` takes the answer.
        Commands staged after it read what the holder sees (a previous holder's writes are
        done once its key is gone)."""
        notice = keys.gen(self._tenant, self._user_id)
        ms = str(_ms(hold_seconds))
        pipe.eval(_ACQUIRE_CURRENT, 2, notice, self._key, str(generation), self._token, ms)

    def read_acquired_current(self, answer: Any) -> float | None:
        """0 when the lock is taken, else the seconds until its holder's hold ends; None when
        a newer notice came (the lock untried: that notice's job syncs the user)."""
        remaining_ms = int(answer)
        if remaining_ms < 0:
            return None
        return self._taken() if remaining_ms == 0 else _remaining(remaining_ms)

    def _taken(self) -> float:
        self._since = time.monotonic()
        return 0.0

    async def release(self, cooldown_seconds: float) -> None:
        """Keep the key until `cooldown_seconds` after acquiring, then let it go (nothing to
        do once a `stage_release` went)."""
        if self._released:
            return
        await self._redis.eval(_RELEASE, 1, self._key, self._token, self._keep(cooldown_seconds))

    def stage_release(self, pipe: Pipeline, cooldown_seconds: float) -> None:
        """`release` in the caller's round trip (a sync's last records): what the job does
        after it touches no more of this user."""
        pipe.eval(_RELEASE, 1, self._key, self._token, self._keep(cooldown_seconds))
        self._released = True

    def _keep(self, cooldown_seconds: float) -> str:
        elapsed = time.monotonic() - self._since
        return str(max(0, int((cooldown_seconds - elapsed) * 1000)))


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _remaining(milliseconds: int) -> float:
    """A holder's remaining hold, as a wait: at least a moment (an expiring key may answer 0)."""
    return max(0.05, milliseconds / 1000.0)


# Refreshed by every step of the run: a run whose step died (a timeout, a lost worker) frees
# the tenant within this time instead of blocking its next runs.
FULL_RUN_LOCK_SECONDS = 15 * 60


class FullRunLock:
    """The tenant's running full reconciliation, if any."""

    def __init__(self, redis: ArqRedis) -> None:
        self._redis = redis

    async def claim(self, tenant: str, run_id: str) -> str | None:
        """None when `run_id` now holds the lock, else the id of the run holding it."""
        key = keys.active_full_run(tenant)
        if await self._redis.set(key, run_id, nx=True, ex=FULL_RUN_LOCK_SECONDS):
            return None
        running = await self._redis.get(key)
        return running.decode() if running else run_id

    async def holder(self, tenant: str) -> str | None:
        """The id of the full run running now, if any."""
        running = await self._redis.get(keys.active_full_run(tenant))
        return running.decode() if running else None

    def stage_refresh(self, pipe: Pipeline, tenant: str) -> None:
        """The run is alive: keep the lock."""
        pipe.expire(keys.active_full_run(tenant), FULL_RUN_LOCK_SECONDS)

    async def release(self, tenant: str, run_id: str) -> None:
        """Free the tenant, if `run_id` holds it: a run that never held the lock (a dry run,
        a run merged into another) must not free the tenant under the running one."""
        await self._redis.eval(_RELEASE, 1, keys.active_full_run(tenant), run_id, "0")

"""What waits for a tenant-level reason to clear (sync-rules.md, "nothing waits for ever"): the
employees whose change could not be applied (parked, with the reason), the tenant's pause, and
the backoff of the probes that find out whether a refused credential works again.

Layout (app/store/keys.py): `parked` Lucca id -> reason code; `parked_since` reason code -> when
the first one parked, and `overflow:<code>` when the hash was full; `paused` a hash (`by`, `at`,
`reason`, `pending_full`, `pending_changes`); `parked_runs` the runs that stopped for a
reason; `probe`/`probe_tries` per reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

from app.store import keys
from app.store.redis_text import COUNT_VALUES, as_text, as_text_map, value_counts

# Bounded: past this many, a reason's clearing starts a full run instead of one job per user.
MAX_PARKED = 100_000
# A reason that never clears (a tenant left as it is) must not keep its list for ever; the
# nightly full run has long caught up by then.
PARKED_SECONDS = 30 * 24 * 3600

_PARK = """
local max = tonumber(ARGV[3])
local parked = 0
for i = 5, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 or redis.call('HLEN', KEYS[1]) < max then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
    parked = parked + 1
  else
    redis.call('HSETNX', KEYS[2], 'overflow:' .. ARGV[1], ARGV[2])
  end
end
redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return parked
"""

_TAKE = """
local entries = redis.call('HGETALL', KEYS[1])
local taken = {}
for i = 1, #entries, 2 do
  if entries[i + 1] == ARGV[1] then
    redis.call('HDEL', KEYS[1], entries[i])
    taken[#taken + 1] = entries[i]
  end
end
local overflow = redis.call('HDEL', KEYS[2], 'overflow:' .. ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
table.insert(taken, 1, tostring(overflow))
return taken
"""

_PROBE_DUE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local tries = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], 86400)
local delay = math.min(tonumber(ARGV[2]), tonumber(ARGV[1]) * 2 ^ math.min(tries - 1, 30))
redis.call('SET', KEYS[1], '1', 'PX', math.max(1, math.floor(delay * 1000)))
return 1
"""

_NOTE_PENDING = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], '1')
return 1
"""


@dataclass(frozen=True, slots=True)
class Taken:
    """The employees a cleared reason released, and whether some could not be kept."""

    user_ids: list[str]
    overflowed: bool


class ParkedUsers:
    def __init__(self, redis: ArqRedis, tenant: str) -> None:
        self._redis = redis
        self._tenant = tenant
        self._keys = [keys.parked(tenant), keys.parked_since(tenant)]

    async def park(self, user_ids: Sequence[str], reason: str, at: str) -> int:
        """Keep these employees until `reason` clears (a later reason replaces an earlier one:
        the job that runs on clearing meets whatever still holds). How many were kept."""
        if not user_ids:
            return 0
        args = [reason, at, str(MAX_PARKED), str(PARKED_SECONDS), *user_ids]
        return int(await self._redis.eval(_PARK, 2, *self._keys, *args))

    async def take(self, reason: str) -> Taken:
        """Release every employee parked for `reason` (atomically: a park that lands meanwhile
        waits for the next clearing)."""
        raw = await self._redis.eval(_TAKE, 2, *self._keys, reason)
        return Taken([as_text(user) for user in raw[1:]], overflowed=as_text(raw[0]) != "0")

    async def park_run(self, reason: str, mode: str) -> None:
        """A run of this mode ("full", "changes") starts again once `reason` clears."""
        key = keys.parked_runs(self._tenant)
        pipe = self._redis.pipeline(transaction=True)
        pipe.sadd(key, f"{reason}:{mode}")
        pipe.expire(key, PARKED_SECONDS)
        await pipe.execute()

    async def take_runs(self, reason: str) -> set[str]:
        """The modes of the runs that waited for `reason`; they wait no more."""
        key = keys.parked_runs(self._tenant)
        members = {as_text(m) for m in await self._redis.smembers(key)}
        mine = [m for m in members if m.startswith(f"{reason}:")]
        if mine:
            await self._redis.srem(key, *mine)
        return {m.removeprefix(f"{reason}:") for m in mine}

    async def counts(self) -> dict[str, tuple[int, str | None]]:
        """Reason code -> (how many wait, since when)."""
        flat = await self._redis.eval(COUNT_VALUES, 1, keys.parked(self._tenant))
        since = await self._redis.hgetall(keys.parked_since(self._tenant))
        first = as_text_map(since)
        counts = value_counts(flat)
        for name in first:  # an overflowed reason waits even with nobody in the hash
            reason = name.removeprefix("overflow:")
            counts.setdefault(reason, 0)
        return {reason: (n, first.get(reason)) for reason, n in counts.items()}


@dataclass(frozen=True, slots=True)
class Pause:
    by: str
    at: str
    reason: str | None
    pending_full: bool
    pending_changes: bool


def _pause_of(raw: Mapping[bytes, bytes]) -> Pause | None:
    fields = as_text_map(raw)
    if "at" not in fields:
        return None
    return Pause(
        by=fields.get("by", ""),
        at=fields["at"],
        reason=fields.get("reason") or None,
        pending_full=fields.get("pending_full") == "1",
        pending_changes=fields.get("pending_changes") == "1",
    )


class TenantPause:
    def __init__(self, redis: ArqRedis, tenant: str) -> None:
        self._redis = redis
        self._key = keys.paused(tenant)

    async def pause(self, by: str, at: str, reason: str | None) -> Pause:
        """Pause (a second pause keeps who paused first, and when); the pause in force."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hsetnx(self._key, "at", at)
        pipe.hsetnx(self._key, "by", by)
        pipe.hsetnx(self._key, "reason", reason or "")
        pipe.hgetall(self._key)
        *_, raw = await pipe.execute()
        pause = _pause_of(raw)
        assert pause is not None
        return pause

    async def get(self) -> Pause | None:
        return _pause_of(await self._redis.hgetall(self._key))

    def stage_get(self, pipe: Pipeline) -> None:
        """`get` in a pipeline; `read` reads its answer."""
        pipe.hgetall(self._key)

    @staticmethod
    def read(answer: Mapping[bytes, bytes]) -> Pause | None:
        return _pause_of(answer)

    async def note_pending(self, *, full: bool) -> bool:
        """A run asked while paused starts on resume; False when the tenant is not paused."""
        field = "pending_full" if full else "pending_changes"
        return bool(await self._redis.eval(_NOTE_PENDING, 1, self._key, field))

    async def resume(self) -> Pause | None:
        """Lift the pause; the one lifted (with the runs it kept), or None."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hgetall(self._key)
        pipe.delete(self._key)
        raw, _ = await pipe.execute()
        return _pause_of(raw)


class ProbeBackoff:
    """When to probe a refused credential again: `base` seconds after the refusal, then after
    each failed probe a delay doubling to `cap`; reset once it works."""

    def __init__(self, redis: ArqRedis, tenant: str, reason: str) -> None:
        self._redis = redis
        self._keys = [keys.probe(tenant, reason), keys.probe_tries(tenant, reason)]

    async def due(self, base: float, cap: float) -> bool:
        """True (and the next delay starts) when a probe may go now."""
        return bool(await self._redis.eval(_PROBE_DUE, 2, *self._keys, str(base), str(cap)))

    async def arm(self, base: float) -> None:
        """A refusal just met: the first probe goes `base` seconds later, not at the next tick
        (an earlier delay, a probe's own doubled one included, stays)."""
        await self._redis.set(self._keys[0], "1", px=max(1, int(base * 1000)), nx=True)

    async def reset(self) -> None:
        await self._redis.delete(*self._keys)

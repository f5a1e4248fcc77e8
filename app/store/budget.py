"""The tenant's Lucca request budget: one token bucket in Redis, shared by every process.

Lucca allows 50 requests per minute per customer, shared with its other integrations; the
sync takes its configured share. A 429 sets a cooldown that stops every worker for that
tenant, not only the job that met it.
"""

from __future__ import annotations

from arq.connections import ArqRedis

from app.metrics import LUCCA_BUDGET_WAITS
from app.store import keys

# Redis' own clock (TIME) serves every process, so skewed hosts share one bucket fairly.
_TAKE = """
local cooldown = redis.call('PTTL', KEYS[2])
if cooldown > 0 then return cooldown end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1]) / 60000.0
local capacity = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], 120000)
return wait
"""


def bucket_capacity(per_minute: int) -> int:
    # A quarter minute of burst: a full first minute then stays within 1.25x the share,
    # under Lucca's 50 when the share is the default 40.
    return max(1, per_minute // 4)


class LuccaBudget:
    def __init__(self, redis: ArqRedis, *, override: int | None = None) -> None:
        self._redis = redis
        self._take = redis.register_script(_TAKE)
        self._override = override

    async def take(self, tenant: str, per_minute: int) -> float:
        """Take one request; 0 when granted, else the seconds to wait before asking again."""
        per_minute = self._override or per_minute
        capacity = bucket_capacity(per_minute)
        waited_ms = await self._take(
            keys=[keys.budget(tenant), keys.cooldown(tenant)], args=[per_minute, capacity]
        )
        if int(waited_ms) > 0:
            LUCCA_BUDGET_WAITS.labels(tenant).inc()
        return int(waited_ms) / 1000.0

    async def revoked(self, tenant: str) -> str | None:
        """Why the tenant's key is flagged as refused by Lucca, or None."""
        flagged = await self._redis.get(keys.lucca_revoked(tenant))
        return None if flagged is None else flagged.decode()

    async def flag_revoked(self, tenant: str, message: str, seconds: int) -> None:
        """Lucca refused the key: no call for `seconds` (or until the key is replaced)."""
        await self._redis.set(keys.lucca_revoked(tenant), message, ex=seconds)

    async def clear_revoked(self, tenant: str) -> bool:
        """Forget the refusal (a new key came); True when there was one."""
        return bool(await self._redis.delete(keys.lucca_revoked(tenant)))

    async def cool_down(self, tenant: str, seconds: float) -> None:
        """After a 429: hold every process's Lucca calls for this tenant."""
        ms = max(1000, int(seconds * 1000))
        await self._redis.set(keys.cooldown(tenant), b"1", px=ms)

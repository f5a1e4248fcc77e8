"""The Lucca request budget: a sliding window per Lucca host in Redis, shared by every process.

Lucca allows 50 requests per minute per customer domain, shared with the customer's other
integrations; the sync promises to stay within its configured share in ANY window of that
length, across processes and restarts. Each granted request is a member of a sorted set scored
by Redis' own clock; a Lua script trims the window and grants atomically. Tenants that point at
the same Lucca host share its set. Within the window, a token bucket spreads the requests: a
quarter of the budget may go at once, the rest comes evenly. A 429 pauses every process's
requests to that host.

Live work (a per-employee sync) may fill the whole window; background work (a reconciliation
page, a poll, a department listing) only while a reserve is left for live work.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

from app.metrics import LUCCA_BUDGET_WAITS
from app.store import keys
from app.store.redis_text import as_text


class Priority(enum.Enum):
    """Who asks: live syncs take their tokens before background work does."""

    LIVE = "live"
    BACKGROUND = "background"


# KEYS: the host's window, its pause, its bucket. ARGV: the limit of the window for this
# priority, the window's length (ms), the member to add, the keys' expiry (ms), the bucket's
# capacity, its refill per ms, the tokens this priority must leave in it.
# Redis' TIME serves every process, so hosts with skewed clocks share one window fairly.
# Returns 0 when granted, else the milliseconds until a request may be granted.
_TAKE = """
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return paused end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local expiry, capacity = tonumber(ARGV[4]), tonumber(ARGV[5])
local rate, keep = tonumber(ARGV[6]), tonumber(ARGV[7])
local state = redis.call('HMGET', KEYS[3], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local since = math.max(0, now - (tonumber(state[2]) or now))
tokens = math.min(capacity, tokens + since * rate)
local wait = 0
if tokens < 1 + keep then wait = math.ceil((1 + keep - tokens) / rate) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  -- The window frees a slot for this caller once count - limit + 1 requests have left it.
  local freeing = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  wait = math.max(wait, tonumber(freeing[2]) + window - now)
end
if wait == 0 then
  tokens = tokens - 1
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], expiry)
end
redis.call('HSET', KEYS[3], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[3], expiry)
if wait > 0 then return math.max(1, wait) end
return 0
"""


@dataclass(frozen=True, slots=True)
class BudgetWindow:
    """How requests are counted: `seconds` is the window's length; `margin` lengthens it for
    the sync's own counting, so a request slowed on its way still lands inside the window
    Lucca counts; `burst` is the share of the budget that may go at once (the rest comes
    evenly over the window, so that a burst of work does not spend a whole window in a
    second and then wait for the next); `live_reserve` is the share of the budget, and of the
    burst, that background work leaves to live work."""

    seconds: float = 60.0
    margin: float = 1.0
    burst: float = 0.25
    live_reserve: float = 0.2

    @property
    def counted_ms(self) -> int:
        return int((self.seconds + self.margin) * 1000)

    def limit(self, per_window: int, priority: Priority) -> int:
        return per_window - self._reserved(per_window, priority)

    def capacity(self, per_window: int) -> int:
        return max(1, int(per_window * self.burst))

    def kept_tokens(self, per_window: int, priority: Priority) -> int:
        return self._reserved(self.capacity(per_window), priority)

    def _reserved(self, amount: int, priority: Priority) -> int:
        return 0 if priority is Priority.LIVE else int(amount * self.live_reserve)


class LuccaBudget:
    def __init__(
        self,
        redis: ArqRedis,
        *,
        window: BudgetWindow | None = None,
        override: int | None = None,
    ) -> None:
        self._redis = redis
        self._take = redis.register_script(_TAKE)
        self._window = window or BudgetWindow()
        self._override = override

    async def take(
        self, host: str, per_window: int, *, priority: Priority, tenant: str = ""
    ) -> float:
        """Take one request to `host`; 0 when granted, else the seconds to wait before asking
        again. `tenant` only labels the wait metric."""
        per_window = self._override or per_window
        window = self._window
        # A unique member: two grants in the same millisecond are two requests.
        member = secrets.token_hex(8)
        wait_ms = await self._take(
            keys=[keys.lucca_requests(host), keys.lucca_pause(host), keys.lucca_bucket(host)],
            args=[
                window.limit(per_window, priority),
                window.counted_ms,
                member,
                window.counted_ms + 1000,
                window.capacity(per_window),
                per_window / window.counted_ms,
                window.kept_tokens(per_window, priority),
            ],
        )
        if int(wait_ms) > 0:
            LUCCA_BUDGET_WAITS.labels(tenant or host).inc()
        return int(wait_ms) / 1000.0

    async def pause(self, host: str, seconds: float) -> None:
        """After a 429: hold every process's requests to this host for `seconds` (at least 1)."""
        ms = max(1000, int(seconds * 1000))
        await self._redis.set(keys.lucca_pause(host), b"1", px=ms)

    async def paused_for(self, host: str) -> float:
        """Seconds left of the host's pause, 0 when none."""
        return max(0, int(await self._redis.pttl(keys.lucca_pause(host)))) / 1000.0

    async def revoked(self, tenant: str) -> str | None:
        """Why the tenant's key is flagged as refused by Lucca, or None."""
        return self.read_revoked(await self._redis.get(keys.lucca_revoked(tenant)))

    @staticmethod
    def stage_revoked(pipe: Pipeline, tenant: str) -> None:
        """`revoked` in a pipeline; `read_revoked` reads its answer."""
        pipe.get(keys.lucca_revoked(tenant))

    @staticmethod
    def read_revoked(answer: bytes | None) -> str | None:
        return None if answer is None else answer.decode()

    async def flag_revoked(self, tenant: str, message: str, seconds: int) -> None:
        """Lucca refused the key: no call for `seconds` (or until the key is replaced)."""
        await self._redis.set(keys.lucca_revoked(tenant), message, ex=seconds)

    async def clear_revoked(self, tenant: str) -> bool:
        """Forget the refusal (a new key came); True when there was one."""
        return bool(await self._redis.delete(keys.lucca_revoked(tenant)))


# Counts an unanswered request; at ARGV[2] of them within ARGV[1] ms, pauses the tenant's
# Elevo for ARGV[3] ms (a 429's longer pause stays) and starts counting afresh. Answers the
# milliseconds left of the tenant's pause, whatever its cause (0: none).
_UNANSWERED = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if count >= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then
    redis.call('SET', KEYS[2], 'unanswered', 'PX', ARGV[3])
  end
end
return math.max(0, redis.call('PTTL', KEYS[2]))
"""


class ElevoPause:
    """After an Elevo 429, or while Elevo leaves requests unanswered: every process waits
    before calling the tenant's Elevo."""

    def __init__(self, redis: ArqRedis) -> None:
        self._redis = redis

    async def pause(self, tenant: str, seconds: float) -> None:
        ms = max(1000, int(seconds * 1000))
        await self._redis.set(keys.elevo_pause(tenant), b"429", px=ms)

    async def note_unanswered(
        self, tenant: str, *, within: float, threshold: int, pause: float
    ) -> float:
        """One request got no answer; when that made `threshold` within `within` seconds, the
        tenant's Elevo is paused for `pause` seconds. The seconds left of its pause (0: none)."""
        arguments = [str(int(within * 1000)), str(threshold), str(max(1, int(pause * 1000)))]
        marks = [keys.elevo_unanswered(tenant), keys.elevo_pause(tenant)]
        return int(await self._redis.eval(_UNANSWERED, 2, *marks, *arguments)) / 1000.0

    async def remaining(self, tenant: str) -> tuple[float, str]:
        """Seconds left of the tenant's Elevo pause (0 when none), and why (`429`,
        `unanswered`)."""
        pipe = self._redis.pipeline(transaction=False)
        self.stage_remaining(pipe, tenant)
        return self.read_remaining(*await pipe.execute())

    @staticmethod
    def stage_remaining(pipe: Pipeline, tenant: str) -> None:
        """`remaining` in a pipeline (two answers); `read_remaining` reads them."""
        pipe.pttl(keys.elevo_pause(tenant))
        pipe.get(keys.elevo_pause(tenant))

    @staticmethod
    def read_remaining(ttl: int, why: bytes | None) -> tuple[float, str]:
        return max(0, int(ttl)) / 1000.0, as_text(why or b"429")

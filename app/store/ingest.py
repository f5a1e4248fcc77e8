"""Webhook ingest: the per-tenant rate of signed events, and what is coalesced beyond it.

Beyond the rate an event writes nothing of its own: its employees (or departments) join a
capped set, or, past the cap or when the event is unreadable, one flag asks for a `changes`
poll. Redis then grows with the number of employees, never with the number of events.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from arq.connections import ArqRedis

from app.store import keys
from app.store.redis_text import as_text

# Far more employees than a tenant has; past it one `changes` poll stands for the rest.
COALESCED_CAP: Final = 20_000
# Coalesced work waits for its drain job (a few seconds); kept long enough to outlive a worker
# outage, after which the nightly reconciliation repairs what is lost.
COALESCED_SECONDS: Final = 2 * 24 * 3600
DRAIN_FLAG_SECONDS: Final = 120

# KEYS: the set, the poll flag. ARGV: cap, ttl, members... A full set raises the flag instead.
_COALESCE: Final = """
if redis.call('SCARD', KEYS[1]) + #ARGV - 2 > tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
  return 0
end
redis.call('SADD', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


async def count_event(redis: ArqRedis, tenant: str) -> int:
    """Count one signed event in this minute's window; how many the window holds now."""
    key = keys.webhook_ingest(tenant, int(time.time() // 60))
    pipe = redis.pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, 120)
    count, _ = await pipe.execute()
    return int(count)


async def coalesce_users(redis: ArqRedis, tenant: str, user_ids: Sequence[str]) -> None:
    await _coalesce(redis, keys.webhook_coalesced_users(tenant), tenant, user_ids)


async def coalesce_departments(redis: ArqRedis, tenant: str, department_ids: Sequence[str]) -> None:
    await _coalesce(redis, keys.webhook_coalesced_departments(tenant), tenant, department_ids)


async def want_poll(redis: ArqRedis, tenant: str) -> None:
    await redis.set(keys.webhook_coalesced_poll(tenant), b"1", ex=COALESCED_SECONDS)


async def _coalesce(redis: ArqRedis, key: str, tenant: str, members: Sequence[str]) -> None:
    if members:
        poll = keys.webhook_coalesced_poll(tenant)
        await redis.eval(
            _COALESCE, 2, key, poll, str(COALESCED_CAP), str(COALESCED_SECONDS), *members
        )


async def claim_drain(redis: ArqRedis, tenant: str) -> bool:
    """True for the event that must queue a drain: none is queued since the last one began."""
    # Expires: a drain lost with its worker is then queued again by the next event.
    flag = keys.webhook_coalesced_drain(tenant)
    return bool(await redis.set(flag, b"1", nx=True, ex=DRAIN_FLAG_SECONDS))


@dataclass(frozen=True, slots=True)
class Coalesced:
    """What events beyond the rate left to do."""

    user_ids: list[str]
    department_ids: list[str]
    poll: bool


async def take_coalesced(redis: ArqRedis, tenant: str, limit: int) -> Coalesced:
    """Take (remove) up to `limit` employees and departments, and the poll flag. The drain
    flag goes first, in the same transaction: an event coalesced after it queues a new drain,
    one coalesced before is taken here."""
    pipe = redis.pipeline(transaction=True)
    pipe.delete(keys.webhook_coalesced_drain(tenant))
    pipe.spop(keys.webhook_coalesced_users(tenant), limit)
    pipe.spop(keys.webhook_coalesced_departments(tenant), limit)
    pipe.get(keys.webhook_coalesced_poll(tenant))
    pipe.delete(keys.webhook_coalesced_poll(tenant))
    _, users, departments, poll, _ = await pipe.execute()
    return Coalesced(
        user_ids=sorted(as_text(member) for member in users or ()),
        department_ids=sorted(as_text(member) for member in departments or ()),
        poll=poll is not None,
    )

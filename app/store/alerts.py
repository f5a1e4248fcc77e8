"""Which alerts a tenant has raised, and the notices waiting to be sent (app/service/alerts.py).

Layout (app/store/keys.py): `alert_states` a hash, alert kind -> the id of the notice that
raised it, present while the alert is raised; `alert_notice` one notice's JSON document, kept
until its job sends it (or for NOTICE_TTL_SECONDS); `alert_pending` the ids of those notices.
A transition and its notice are written by one script: however many workers look at the same
tenant at once, a raise or a clear is noticed once, and never without its notice.
"""

from __future__ import annotations

from typing import Final

from arq.connections import ArqRedis

from app.store import keys
from app.store.redis_text import as_text

# Longer than a notice's every retry: one that is still unsent by then is given up.
NOTICE_TTL_SECONDS: Final = 2 * 24 * 3600

_TRANSITION = """
if ARGV[2] == '1' then
  if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3]) == 0 then return 0 end
else
  if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
end
redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[5])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
"""


class AlertStates:
    def __init__(self, redis: ArqRedis) -> None:
        self._redis = redis

    async def raised(self, tenant: str) -> set[str]:
        """The kinds of alert raised now."""
        return {as_text(kind) for kind in await self._redis.hkeys(keys.alert_states(tenant))}

    async def transition(
        self, tenant: str, kind: str, *, raised: bool, notice_id: str, document: bytes
    ) -> bool:
        """Raise (or clear) the alert and keep its notice; False when it was so already."""
        changed = await self._redis.eval(
            _TRANSITION,
            3,
            keys.alert_states(tenant),
            keys.alert_notice(tenant, notice_id),
            keys.alert_pending(tenant),
            kind,
            "1" if raised else "0",
            notice_id,
            document.decode(),
            str(NOTICE_TTL_SECONDS),
        )
        return bool(changed)

    async def notice(self, tenant: str, notice_id: str) -> bytes | None:
        document: bytes | None = await self._redis.get(keys.alert_notice(tenant, notice_id))
        return document

    async def pending(self, tenant: str) -> list[str]:
        """The notices not sent yet, oldest first (their ids sort by time)."""
        members = await self._redis.smembers(keys.alert_pending(tenant))
        return sorted(as_text(member) for member in members)

    async def forget_notice(self, tenant: str, notice_id: str) -> None:
        """The notice was sent, or given up."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(keys.alert_notice(tenant, notice_id))
        pipe.srem(keys.alert_pending(tenant), notice_id)
        await pipe.execute()

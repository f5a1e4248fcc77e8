"""One sync at a time per user, and a cooldown after it in which later notices collapse."""

from __future__ import annotations

import secrets
import time

from arq.connections import ArqRedis

from app.sync import keys

# Only the holder may shorten or drop the key: compare its token first.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  local keep = tonumber(ARGV[2])
  if keep > 0 then redis.call('PEXPIRE', KEYS[1], keep) else redis.call('DEL', KEYS[1]) end
  return 1
end
return 0
"""


class UserLock:
    def __init__(self, redis: ArqRedis, tenant: str, user_id: str) -> None:
        self._redis = redis
        self._key = keys.busy(tenant, user_id)
        self._token = secrets.token_hex(8)
        self._since = 0.0

    async def acquire(self, hold_seconds: float) -> float:
        """0 when acquired, else seconds until the current holder's hold ends."""
        acquired = await self._redis.set(
            self._key, self._token, nx=True, px=max(1, int(hold_seconds * 1000))
        )
        if acquired:
            self._since = time.monotonic()
            return 0.0
        remaining_ms = await self._redis.pttl(self._key)
        return max(0.05, int(remaining_ms) / 1000.0)

    async def release(self, cooldown_seconds: float) -> None:
        """Keep the key until `cooldown_seconds` after acquiring, then let it go."""
        elapsed = time.monotonic() - self._since
        keep_ms = int((cooldown_seconds - elapsed) * 1000)
        await self._redis.eval(_RELEASE, 1, self._key, self._token, str(max(0, keep_ms)))

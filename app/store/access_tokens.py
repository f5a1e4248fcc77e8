"""Tenant tokens in Redis: what the admin API issued, stored by the SHA-256 of the token.

Layout (app/store/keys.py):
    t:{tenant}:access-token:{id}  hash: digest, scope, name, created_at, expires_at, last_used_at;
                                  the key expires with the token
    t:{tenant}:access-tokens      sorted set of the tenant's token ids by expiry (epoch seconds)

The token itself is never stored: a high-entropy random token needs no slow hash, its SHA-256
cannot be turned back into it. Times are ISO 8601 in UTC.
"""

from __future__ import annotations

import builtins
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from arq.connections import ArqRedis

from app.store import keys
from app.store.redis_text import as_text, as_text_map

# Sets the time a token was last used only while the token still exists: a token revoked or
# expired meanwhile is not brought back as a partial hash.
_TOUCH: Final = """
if redis.call('exists', KEYS[1]) == 1 then
  redis.call('hset', KEYS[1], 'last_used_at', ARGV[1])
end
"""


@dataclass(frozen=True, slots=True)
class StoredToken:
    id: str
    tenant: str
    scope: str
    name: str
    digest: str  # hex SHA-256 of the token
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None = None


class AccessTokens:
    def __init__(self, redis: ArqRedis) -> None:
        self._redis = redis

    async def add(self, token: StoredToken, *, limit: int) -> bool:
        """Store the token; False (nothing stored) when the tenant holds `limit` live ones."""
        index = keys.access_tokens(token.tenant)
        await self._redis.zremrangebyscore(index, "-inf", token.created_at.timestamp())
        if await self._redis.zcard(index) >= limit:
            return False
        key = keys.access_token(token.tenant, token.id)
        expires = token.expires_at.timestamp()
        latest = await self._redis.zrange(index, -1, -1, withscores=True)
        # Relative TTLs: they hold whatever Redis's own clock says.
        now = token.created_at.timestamp()
        lifetime = max(1, math.ceil(expires - now))
        index_lifetime = max([lifetime, *(math.ceil(score - now) for _, score in latest)])
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=_fields(token))
            pipe.expire(key, lifetime)
            pipe.zadd(index, {token.id: expires})
            # The index expires with the last of its tokens.
            pipe.expire(index, index_lifetime)
            await pipe.execute()
        return True

    async def get(self, tenant: str, token_id: str) -> StoredToken | None:
        raw = await self._redis.hgetall(keys.access_token(tenant, token_id))
        return _token(tenant, token_id, raw)

    async def list(self, tenant: str, now: datetime) -> builtins.list[StoredToken]:
        """The tenant's live tokens, the one expiring first first."""
        index = keys.access_tokens(tenant)
        await self._redis.zremrangebyscore(index, "-inf", now.timestamp())
        ids = [as_text(item) for item in await self._redis.zrange(index, 0, -1)]
        found = [await self.get(tenant, token_id) for token_id in ids]
        return [token for token in found if token is not None]

    async def revoke(self, tenant: str, token_id: str) -> bool:
        """Forget the token; True when there was one."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.access_token(tenant, token_id))
            pipe.zrem(keys.access_tokens(tenant), token_id)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def touch(self, tenant: str, token_id: str, at: datetime) -> None:
        await self._redis.eval(_TOUCH, 1, keys.access_token(tenant, token_id), at.isoformat())


def _fields(token: StoredToken) -> dict[str, str]:
    return {
        "digest": token.digest,
        "scope": token.scope,
        "name": token.name,
        "created_at": token.created_at.isoformat(),
        "expires_at": token.expires_at.isoformat(),
    }


def _token(tenant: str, token_id: str, raw: dict[bytes, bytes]) -> StoredToken | None:
    fields = as_text_map(raw)
    try:
        last_used = fields.get("last_used_at")
        return StoredToken(
            id=token_id,
            tenant=tenant,
            scope=fields["scope"],
            name=fields["name"],
            digest=fields["digest"],
            created_at=datetime.fromisoformat(fields["created_at"]),
            expires_at=datetime.fromisoformat(fields["expires_at"]),
            last_used_at=datetime.fromisoformat(last_used) if last_used else None,
        )
    except (KeyError, ValueError):
        return None  # none, or not a whole record: no token

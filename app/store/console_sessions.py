"""The operator console's server-side sessions: who signed in, and the CSRF token of their
forms. The cookie carries only the random id; everything else stays here and expires."""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis

from app.store import keys
from app.store.redis_text import as_text_map


@dataclass(frozen=True, slots=True)
class StoredSession:
    name: str  # the principal's name (`admin`, or a tenant token's id)
    scope: str
    tenant: str  # "" for every tenant
    csrf: str


class ConsoleSessions:
    def __init__(self, redis: ArqRedis) -> None:
        self._redis = redis

    async def create(self, session_id: str, session: StoredSession, seconds: int) -> None:
        key = keys.console_session(session_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(
            key,
            mapping={
                "name": session.name,
                "scope": session.scope,
                "tenant": session.tenant,
                "csrf": session.csrf,
            },
        )
        pipe.expire(key, max(1, seconds))
        await pipe.execute()

    async def get(self, session_id: str) -> StoredSession | None:
        raw = await self._redis.hgetall(keys.console_session(session_id))
        if not raw:
            return None
        fields = as_text_map(raw)
        return StoredSession(
            name=fields.get("name", ""),
            scope=fields.get("scope", ""),
            tenant=fields.get("tenant", ""),
            csrf=fields.get("csrf", ""),
        )

    async def delete(self, session_id: str) -> None:
        await self._redis.delete(keys.console_session(session_id))

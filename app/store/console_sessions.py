"""The operator console's server-side sessions: who signed in, and the CSRF token of their
forms. The cookie carries only the random id; everything else stays here and expires."""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis

from app.store import keys


@dataclass(frozen=True, slots=True)
class StoredSession:
    name: str  # the principal's name (`admin`, or a tenant token's id)
    scope: str
    tenant: str  # "" for every tenant
    csrf: str


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


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
        fields = {_text(k): _text(v) for k, v in raw.items()}
        return StoredSession(
            name=fields.get("name", ""),
            scope=fields.get("scope", ""),
            tenant=fields.get("tenant", ""),
            csrf=fields.get("csrf", ""),
        )

    async def delete(self, session_id: str) -> None:
        await self._redis.delete(keys.console_session(session_id))

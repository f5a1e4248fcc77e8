"""Who changed a tenant: its configuration, its tokens, its held runs (issue 12). A list per
tenant, newest first, trimmed to `AUDIT_LENGTH` entries and expiring `retention_seconds` after
the last one. Entries name settings and tokens, never a value of a secret."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson
from arq.connections import ArqRedis

from app.store import keys

AUDIT_LENGTH: Final = 200


class AuditLog:
    def __init__(self, redis: ArqRedis, retention_seconds: int) -> None:
        self._redis = redis
        self._retention = retention_seconds

    async def record(self, tenant: str, entry: Mapping[str, Any]) -> None:
        key = keys.audit(tenant)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, orjson.dumps(entry))
            pipe.ltrim(key, 0, AUDIT_LENGTH - 1)
            pipe.expire(key, self._retention)
            await pipe.execute()

    async def entries(self, tenant: str) -> list[dict[str, Any]]:
        return [orjson.loads(item) for item in await self._redis.lrange(keys.audit(tenant), 0, -1)]

"""Per-user history, the users whose sync fails, and the tenant's status notes (in Redis)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

from app.store import history_blob, keys
from app.store.redis_text import as_text

HISTORY_LENGTH = 200
DUPLICATES_SHOWN = 20


def stage_history_read(pipe: Pipeline, tenant: str, user_id: str, newest: int = 0) -> None:
    """Stage the reads of a user's history: its blob, then the list an earlier version wrote
    (its `newest` entries; 0: all), in that order; history_blob.read joins the two."""
    pipe.get(keys.history(tenant, user_id))
    pipe.lrange(keys.old_history(tenant, user_id), 0, newest - 1)


class Records:
    def __init__(self, redis: ArqRedis, retention_seconds: int) -> None:
        self._redis = redis
        self._retention = retention_seconds

    def pipeline(self) -> Pipeline:
        """A MULTI for a job's records: its history, errors and run counts land together."""
        return self._redis.pipeline(transaction=True)

    # -- per user -------------------------------------------------------------------------

    async def add(
        self, tenant: str, user_id: str, entry: Mapping[str, Any], *, failing: bool | None
    ) -> bool:
        """Push one entry on the user's history; `failing` marks (True) or clears (False)
        the user's last error, None leaves it as it is. True when a cleared error was there
        (the user recovered)."""
        pipe = self._redis.pipeline(transaction=False)
        cleared = self.stage_add(pipe, tenant, user_id, entry, failing=failing)
        results = await pipe.execute()
        return cleared is not None and bool(results[cleared])

    def stage_add(
        self,
        pipe: Pipeline,
        tenant: str,
        user_id: str,
        entry: Mapping[str, Any] | None,
        *,
        failing: bool | None,
    ) -> int | None:
        """`add` staged in a pipeline (`entry` None: no history entry, only the error mark);
        when `failing` is False, the position of the answer that says whether an error was
        cleared."""
        if entry is not None:
            stored = history_blob.body(entry)
            occurrence = history_blob.occurrence(entry.get("at"), entry.get("run"))
            # The entries older than the retention go as this one lands (RUN_RETENTION_SECONDS
            # is how long an entry is kept, not only how long a quiet history lives).
            cutoff = history_blob.retention_start(occurrence, self._retention)
            # EVAL itself: `eval`'s stubs take only text arguments, and these are bytes.
            pipe.execute_command(
                "EVAL",
                history_blob.HISTORY_SCRIPT,
                1,
                keys.history(tenant, user_id),
                stored,
                occurrence,
                HISTORY_LENGTH,
                self._retention,
                cutoff,
            )
        if failing is True:
            if entry is None:
                raise ValueError("a failing user's error is its history entry: give the entry")
            # Whole: only the users failing now have one.
            blob = orjson.dumps(entry, default=str).decode()
            pipe.hset(keys.user_errors(tenant), user_id, blob)
        elif failing is False:
            pipe.hdel(keys.user_errors(tenant), user_id)
            return len(pipe) - 1
        return None

    def stage_clear(self, pipe: Pipeline, tenant: str, user_ids: Sequence[str]) -> int:
        """Clear several users' last errors, no history entry (quiet `unchanged` decisions):
        two commands for a page, not one per user. The position of the answer that lists, in
        order, the errors cleared (None: there was none). Inside the records' MULTI, the read
        and the delete see the same hash."""
        key = keys.user_errors(tenant)
        pipe.hmget(key, list(user_ids))
        pipe.hdel(key, *user_ids)
        return len(pipe) - 2

    async def history(self, tenant: str, user_id: str) -> list[dict[str, Any]]:
        """The user's entries, newest first: the blob's, then those an earlier version's list
        still keeps (one round trip)."""
        pipe = self._redis.pipeline(transaction=False)
        stage_history_read(pipe, tenant, user_id)
        blob, old = await pipe.execute()
        return list(history_blob.read(blob, old, user_id, HISTORY_LENGTH))

    async def user_errors(self, tenant: str) -> dict[str, Any]:
        raw = await self._redis.hgetall(keys.user_errors(tenant))
        return {as_text(k): orjson.loads(v) for k, v in raw.items()}

    # -- tenant status --------------------------------------------------------------------

    async def note_duplicate(self, tenant: str, entry: Mapping[str, str]) -> None:
        """A second profile of one employee was retired (GET /sync/{tenant} shows the last)."""
        key = keys.duplicate_profiles(tenant)
        pipe = self._redis.pipeline(transaction=False)
        pipe.lpush(key, orjson.dumps(entry))
        pipe.ltrim(key, 0, DUPLICATES_SHOWN - 1)
        pipe.expire(key, self._retention)
        await pipe.execute()

    async def duplicates(self, tenant: str) -> list[dict[str, Any]]:
        raw = await self._redis.lrange(keys.duplicate_profiles(tenant), 0, -1)
        return [orjson.loads(item) for item in raw]

    def stage_note(self, pipe: Pipeline, tenant: str, **facts: str) -> None:
        pipe.hset(keys.status(tenant), mapping=facts)

    async def note(self, tenant: str, **facts: str) -> None:
        """Tenant-level facts for GET /sync/{tenant} (last event, last full run, flags)."""
        await self._redis.hset(keys.status(tenant), mapping=facts)

    async def clear_notes(self, tenant: str, *names: str) -> None:
        """Facts no longer true; a fact not set stays as it is (no write at all)."""
        await self._redis.hdel(keys.status(tenant), *names)

    async def flags(self, tenant: str, *names: str) -> list[str]:
        """Some of the tenant's facts, "" for those not set (one round trip)."""
        raw = await self._redis.hmget(keys.status(tenant), list(names))
        return [as_text(value) for value in raw]

    def stage_flags(self, pipe: Pipeline, tenant: str, *names: str) -> None:
        """`flags` in a pipeline; `read_flags` reads its answer."""
        pipe.hmget(keys.status(tenant), list(names))

    @staticmethod
    def read_flags(answer: Sequence[bytes | None]) -> list[str]:
        return [as_text(value) for value in answer]

    async def notes(self, tenant: str) -> dict[str, str]:
        raw = await self._redis.hgetall(keys.status(tenant))
        return {as_text(k): as_text(v) for k, v in raw.items()}

"""What a run's work of several Lucca requests has read so far, so that a step retried after a
spent budget, a passing failure or a lost worker resumes where it stopped and never asks Lucca
again for what it already has (issue 11, point 3).

- `RunReads`: a reconciliation page's answer (by offset) and the by-id reads of a run's final
  check or plan (by user), each with the notice mark noted before the request (a page must
  not overwrite a change noticed after it read Lucca: app/store/queue.py).
- `ListingProgress`: a listing read page after page (a department's members, a change poll):
  the next offset, stored in the run record as `cursor`, and the ids collected so far.

Every key is a run part (keys.run_part) and lives as long as the run's working sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from arq.connections import ArqRedis

from app.clients.lucca import LuccaBatch
from app.core.errors import InvalidLuccaUser
from app.core.lucca_user import LuccaUser, parse_user
from app.store import keys, run_progress
from app.store.runs import RunStore

RUN_PART_TTL = 24 * 3600


def _encode(batch: LuccaBatch, mark: int) -> dict[str, Any]:
    return {
        "mark": mark,
        # The items as Lucca gave them, no copy: orjson encodes them where they are (`dumps`).
        "users": {uid: user.raw for uid, user in batch.users.items()},
        "invalid": dict(batch.invalid),
        "count": batch.item_count,
        "shown": sorted(batch.skip_field_shown),
    }


def _dumps(entry: Mapping[str, Any]) -> bytes:
    # An item is a Mapping (a dict as Lucca's JSON decodes): another kind is copied to one.
    return orjson.dumps(entry, default=dict)


def _decode(entry: Mapping[str, Any]) -> LuccaBatch:
    users: dict[str, LuccaUser] = {}
    invalid = dict(entry["invalid"])
    for user_id, item in entry["users"].items():
        try:
            users[user_id] = parse_user(item)
        except InvalidLuccaUser as exc:  # cannot happen for an item that parsed once
            invalid[user_id] = str(exc)
    return LuccaBatch(
        users=users,
        invalid=invalid,
        item_count=int(entry["count"]),
        skip_field_shown=frozenset(entry["shown"]),
    )


class RunReads:
    def __init__(self, redis: ArqRedis, tenant: str, run_id: str) -> None:
        self._redis = redis
        self._tenant = tenant
        self._run_id = run_id
        self._pages = keys.run_part(tenant, run_id, "pages")
        self._resume_at = keys.run_part(tenant, run_id, "pages-done")
        self._by_id = keys.run_part(tenant, run_id, "reads")

    async def page(self, offset: int) -> tuple[LuccaBatch, int] | None:
        """The page read at `offset` by an earlier try of its step, with its notice mark."""
        raw = await self._redis.hget(self._pages, str(offset))
        if raw is None:
            return None
        entry = orjson.loads(raw)
        return _decode(entry), int(entry["mark"])

    async def keep_page(self, offset: int, batch: LuccaBatch, mark: int) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(self._pages, mapping={str(offset): _dumps(_encode(batch, mark))})
        pipe.expire(self._pages, RUN_PART_TTL)
        await pipe.execute()

    async def page_done(self, offset: int, following: int) -> None:
        """The page is done: its answer is no longer needed, a retried page job resumes at
        `following` (-1: that was the last page), and the run moved on (its watchdog)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(self._pages, str(offset))
        pipe.set(self._resume_at, following, ex=RUN_PART_TTL)
        run_progress.stage_progress(pipe, self._tenant, self._run_id)
        await pipe.execute()

    async def resume_at(self) -> int:
        """The offset of the first page not done yet: 0 before any, -1 after the last."""
        return int(await self._redis.get(self._resume_at) or 0)

    async def known(self, user_ids: Sequence[str]) -> tuple[LuccaBatch, set[str], int | None]:
        """What earlier by-id requests of this run read for these users: the merged answer,
        the users read (one Lucca did not return is read too), and the oldest notice mark."""
        if not user_ids:
            return LuccaBatch(users={}, invalid={}, item_count=0), set(), None
        raw = await self._redis.hmget(self._by_id, list(user_ids))
        found = {uid: orjson.loads(blob) for uid, blob in zip(user_ids, raw, strict=True) if blob}
        merged: dict[str, Any] = {"users": {}, "invalid": {}, "count": 0, "shown": []}
        for entry in found.values():
            merged["users"].update(entry["users"])
            merged["invalid"].update(entry["invalid"])
            merged["count"] += entry["count"]
            merged["shown"] += entry["shown"]
        mark = min((int(entry["mark"]) for entry in found.values()), default=None)
        return _decode(merged), set(found), mark

    async def forget(self) -> None:
        """The run is over: its reads go (they would expire with the run's sets anyway)."""
        await self._redis.delete(self._pages, self._by_id)

    async def keep(self, user_ids: Iterable[str], batch: LuccaBatch, mark: int) -> None:
        """One by-id request's answer, kept per user asked."""
        pipe = self._redis.pipeline(transaction=False)
        for user_id in user_ids:
            user = batch.users.get(user_id)
            invalid = {user_id: batch.invalid[user_id]} if user_id in batch.invalid else {}
            one = LuccaBatch(
                users={user_id: user} if user is not None else {},
                invalid=invalid,
                item_count=int(user is not None or bool(invalid)),
                skip_field_shown=batch.skip_field_shown & {user_id},
            )
            pipe.hset(self._by_id, mapping={user_id: _dumps(_encode(one, mark))})
        pipe.expire(self._by_id, RUN_PART_TTL)
        await pipe.execute()


class ListingProgress:
    """A listing read page by page: resumes at the stored cursor with what it collected."""

    def __init__(self, redis: ArqRedis, tenant: str, run_id: str) -> None:
        self._redis = redis
        self._tenant = tenant
        self._run_id = run_id
        self._ids = keys.run_part(tenant, run_id, "listed")
        self._unreadable = keys.run_part(tenant, run_id, "unreadable")

    async def cursor(self) -> int:
        """The offset of the next page to read: 0 before the first, -1 after the last."""
        return await RunStore.cursor(self._redis, self._tenant, self._run_id)

    async def advance(
        self, next_offset: int, user_ids: Sequence[str], unreadable: Mapping[str, str]
    ) -> None:
        """One page read: its ids and unreadable items kept, and the cursor moved past it, in
        one transaction (a step killed in between reads the page again, never skips it)."""
        pipe = self._redis.pipeline(transaction=True)
        if user_ids:
            pipe.rpush(self._ids, *user_ids)
        if unreadable:
            pipe.hset(self._unreadable, mapping=dict(unreadable))
        for key in (self._ids, self._unreadable):
            pipe.expire(key, RUN_PART_TTL)
        RunStore.stage_cursor(pipe, self._tenant, self._run_id, next_offset)
        await pipe.execute()

    async def collected(self) -> tuple[list[str], dict[str, str]]:
        """The ids listed so far, each once in listing order, and the unreadable items."""
        ids = [raw.decode() for raw in await self._redis.lrange(self._ids, 0, -1)]
        unreadable = await self._redis.hgetall(self._unreadable)
        return list(dict.fromkeys(ids)), {k.decode(): v.decode() for k, v in unreadable.items()}

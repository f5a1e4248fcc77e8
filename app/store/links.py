"""Which Elevo profile is whose: the id map, the copy of each employee's profile, and the
reports waiting for a manager's profile."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import orjson
from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

from app.core.profile import ElevoProfile, profile_from_copy, profile_to_copy
from app.store import keys

# Takes a write to stage into a pipeline its caller sends later.
StageWith = Callable[[Callable[[Pipeline], None]], None]

# How long a report waits, in Redis, for its manager to get a profile (the nightly run after).
AWAITING_MANAGER_SECONDS = 7 * 24 * 3600
# How long a creation whose answer was lost may still land in Elevo (a request held in a
# proxy or a queue): until then, every sync of the employee looks for a second profile.
UNSURE_CREATE_SECONDS = 24 * 3600
# How long the copy of a profile the sync last read or wrote is kept: an employee who changes
# again within it is written without a read (a stale copy only costs that read, after a 412).
# A day: the copies of a first run's creations do not outlive its own snapshot for long.
PROFILE_COPY_SECONDS = 24 * 3600


class ProfileLinks:
    def __init__(self, redis: ArqRedis, tenant: str) -> None:
        self._redis = redis
        self._tenant = tenant

    async def profile_id(self, user_id: str) -> str | None:
        cached = await self._redis.hget(keys.idmap(self._tenant), user_id)
        return None if cached is None else str(cached.decode())

    async def linked(self, user_id: str) -> tuple[str | None, ElevoProfile | None]:
        """The linked profile's id, and the copy of it kept with its version (one round
        trip); a copy of another profile than the linked one is no copy."""
        pipe = self._redis.pipeline(transaction=False)
        self.stage_linked(pipe, user_id)
        return self.read_linked(await pipe.execute())

    def stage_linked(self, pipe: Pipeline, user_id: str) -> None:
        """`linked` in a pipeline; `read_linked` reads its two answers."""
        pipe.hget(keys.idmap(self._tenant), user_id)
        pipe.get(keys.profile_copy(self._tenant, user_id))

    @staticmethod
    def read_linked(answers: Sequence[Any]) -> tuple[str | None, ElevoProfile | None]:
        cached, blob = answers
        profile_id = None if cached is None else str(cached.decode())
        if blob is None or profile_id is None:
            return profile_id, None
        copy = profile_from_copy(orjson.loads(blob))
        return profile_id, copy if copy.id == profile_id and copy.version else None

    def stage_copy(self, pipe: Pipeline, user_id: str, profile: ElevoProfile | None) -> None:
        """Keep `profile` (exactly as Elevo holds it at its version) as the employee's copy;
        None (a version unknown, or a write sent without one) forgets the copy."""
        key = keys.profile_copy(self._tenant, user_id)
        if profile is None or not profile.version:
            pipe.delete(key)
        else:
            pipe.set(key, orjson.dumps(profile_to_copy(profile)), ex=PROFILE_COPY_SECONDS)

    async def forget_copy(self, user_id: str) -> None:
        await self._redis.delete(keys.profile_copy(self._tenant, user_id))

    async def profile_ids(self, user_ids: Sequence[str]) -> list[str | None]:
        linked = await self._redis.hmget(keys.idmap(self._tenant), list(user_ids))
        return [None if pid is None else pid.decode() for pid in linked]

    async def count(self) -> int:
        """How many employees are linked to a profile."""
        return int(await self._redis.hlen(keys.idmap(self._tenant)))

    async def remember(self, user_id: str, profile_id: str) -> None:
        await self._redis.hset(keys.idmap(self._tenant), user_id, profile_id)

    async def forget(self, user_id: str) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hdel(keys.idmap(self._tenant), user_id)
        pipe.delete(keys.profile_copy(self._tenant, user_id))
        await pipe.execute()

    async def begin_create(self, user_id: str) -> bool:
        """Before a creation is sent: False when an earlier one of this employee lost its
        answer (that mark stays, whatever this one's answer)."""
        key = keys.unsure_creates(self._tenant)
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(key, {user_id: time.time()}, nx=True)
        pipe.expire(key, UNSURE_CREATE_SECONDS)  # the newest mark's day, for the whole set
        added, _ = await pipe.execute()
        return bool(added)

    async def end_create(self, user_id: str) -> None:
        """The creation was answered: Elevo holds the one profile it said."""
        await self._redis.zrem(keys.unsure_creates(self._tenant), user_id)

    def stage_unsure(self, pipe: Pipeline, user_id: str) -> None:
        """Whether one employee's creation may have been applied unknown to us, in a
        pipeline; `read_unsure` reads its answer."""
        pipe.zscore(keys.unsure_creates(self._tenant), user_id)

    @staticmethod
    def read_unsure(answer: Any) -> bool:
        return answer is not None and float(answer) > time.time() - UNSURE_CREATE_SECONDS

    async def unsure_creates(self) -> set[str]:
        """The employees a creation of which may have been applied without our knowing."""
        key = keys.unsure_creates(self._tenant)
        pipe = self._redis.pipeline(transaction=False)
        pipe.zremrangebyscore(key, "-inf", time.time() - UNSURE_CREATE_SECONDS)
        pipe.zrange(key, 0, -1)
        _, members = await pipe.execute()
        return {member.decode() for member in members}

    async def await_manager(
        self, manager_id: str, user_id: str, *, stage_with: StageWith | None = None
    ) -> None:
        """The report waits for its manager's profile; with `stage_with`, in a pipeline the
        caller sends later (a slice's records)."""
        if stage_with is not None:
            stage_with(partial(self.stage_await_manager, manager_id=manager_id, user_id=user_id))
            return
        pipe = self._redis.pipeline(transaction=False)
        self.stage_await_manager(pipe, manager_id, user_id)
        await pipe.execute()

    def stage_await_manager(self, pipe: Pipeline, manager_id: str, user_id: str) -> None:
        """`await_manager` in the caller's pipeline."""
        key = keys.awaiting_manager(self._tenant, manager_id)
        pipe.sadd(key, user_id)
        pipe.expire(key, AWAITING_MANAGER_SECONDS)

    async def waiting_for(self, manager_id: str) -> set[str]:
        """The reports that wait for this manager's profile. They wait on until their syncs
        are queued (`stop_waiting`): a job lost in between leaves them to the next one."""
        waiting = await self._redis.smembers(keys.awaiting_manager(self._tenant, manager_id))
        return {member.decode() for member in waiting}

    async def stop_waiting(self, follow_ups: Mapping[str, str]) -> None:
        """These reports' syncs are queued (report -> the manager it waited for)."""
        if not follow_ups:
            return
        pipe = self._redis.pipeline(transaction=False)
        for report, manager_id in follow_ups.items():
            pipe.srem(keys.awaiting_manager(self._tenant, manager_id), report)
        await pipe.execute()

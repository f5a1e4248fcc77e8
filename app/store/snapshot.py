"""A reconciliation's working sets in Redis: the Elevo snapshot, who Lucca listed, and what
waits for the run's end. Every key lives a day (keys.run_part)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from arq.connections import ArqRedis

from app.clients.lucca import LuccaBatch
from app.core.profile import ElevoProfile, profile_from_dict
from app.store import keys

RUN_KEY_TTL = 24 * 3600


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a reconciliation read of Elevo at its start, for the users at hand.

    `profiles`: each user's profile (linked by externalId, else the one with its userName);
    `profile_ids`: Lucca id -> profile id for every linked profile (managers included). When
    `complete`, a user found in neither has no profile: no lookup is sent to Elevo.
    `unlinked`: managers whom neither the snapshot nor the id map linked to a profile when it
    was read: a report's sync does not ask the id map again for each of them.
    """

    profiles: Mapping[str, ElevoProfile]
    profile_ids: Mapping[str, str]
    complete: bool = True
    unlinked: frozenset[str] = frozenset()


class RunSets:
    def __init__(self, redis: ArqRedis, tenant: str, run_id: str) -> None:
        self._redis = redis
        self._tenant = tenant
        self._run_id = run_id

    def _key(self, part: str) -> str:
        return keys.run_part(self._tenant, self._run_id, part)

    @property
    def run_id(self) -> str:
        return self._run_id

    async def store_profiles(self, profiles: Sequence[ElevoProfile], *, total: int) -> int:
        """One page of every Elevo profile, indexed by externalId and by userName, and the
        listing's totalResults as the page told it; how many of them are active managed
        profiles.

        One command per key, not per profile: packing 1,500 commands for a page of 500 cost
        more CPU than everything else the page does."""
        blobs: dict[str, bytes] = {}
        by_ext: dict[str, str] = {}
        by_name: dict[str, str] = {}
        managed: list[str] = []
        active = 0
        for profile in profiles:
            # The dataclass as profile_to_dict has it (same keys), encoded in one call.
            blobs[profile.id] = orjson.dumps(profile, default=dict)
            if profile.external_id:
                by_ext[profile.external_id] = profile.id
                if profile.managed:
                    managed.append(profile.external_id)
                    active += profile.active
            if profile.user_name:
                by_name[profile.user_name.casefold()] = profile.id
        pipe = self._redis.pipeline(transaction=False)
        for part, mapping in (("elevo", blobs), ("by-ext", by_ext), ("by-name", by_name)):
            if mapping:
                pipe.hset(self._key(part), mapping=mapping)
        if managed:
            pipe.sadd(self._key("managed"), *managed)
        pipe.set(self._key("elevo-total"), total, ex=RUN_KEY_TTL)
        for part in ("elevo", "by-ext", "by-name", "managed"):
            pipe.expire(self._key(part), RUN_KEY_TTL)
        await pipe.execute()
        return active

    async def snapshot_progress(self, steps: Sequence[str]) -> tuple[set[str], int | None]:
        """Which of these snapshot steps the run counted (RunStore.count_once), and the
        listing's totalResults as the last page stored told it (None before any)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.smismember(self._key("counted"), list(steps))
        pipe.get(self._key("elevo-total"))
        counted, total = await pipe.execute()
        done = {step for step, member in zip(steps, counted, strict=True) if member}
        return done, None if total is None else int(total)

    async def snapshot_for(self, batch: LuccaBatch, user_ids: Sequence[str]) -> Snapshot:
        """The snapshot's answers for these users and their managers (two round trips).

        A manager the snapshot does not link is looked up in the id map at once (a profile
        created since, by this run or a live sync): each of its reports would ask otherwise."""
        managers = {u.manager_id for u in batch.users.values() if u.manager_id}
        linked_ids = sorted(set(user_ids) | managers)
        names = {uid: u.user_name.casefold() for uid, u in batch.users.items() if u.user_name}
        named = list(names.values())
        boss_ids = sorted(managers)
        asked = [(self._key("by-ext"), linked_ids), (self._key("by-name"), named)]
        asked.append((keys.idmap(self._tenant), boss_ids))
        by_ext, by_name, by_map = await self._hmget_each(asked)
        profile_ids = {
            uid: pid.decode() for uid, pid in zip(linked_ids, by_ext, strict=True) if pid
        }
        unlinked = set()
        for uid, pid in zip(boss_ids, by_map, strict=True):
            if uid not in profile_ids:
                if pid:
                    profile_ids[uid] = pid.decode()
                else:
                    unlinked.add(uid)
        name_ids = {name: pid.decode() for name, pid in zip(named, by_name, strict=True) if pid}
        wanted = {uid: profile_ids.get(uid) or name_ids.get(names.get(uid, "")) for uid in user_ids}
        scim_ids = sorted({pid for pid in wanted.values() if pid})
        (blobs,) = await self._hmget_each([(self._key("elevo"), scim_ids)])
        loaded = {
            pid: profile_from_dict(orjson.loads(blob))
            for pid, blob in zip(scim_ids, blobs, strict=True)
            if blob is not None
        }
        profiles = {uid: loaded[pid] for uid, pid in wanted.items() if pid in loaded}
        return Snapshot(profiles=profiles, profile_ids=profile_ids, unlinked=frozenset(unlinked))

    async def _hmget_each(self, asked: Sequence[tuple[str, Sequence[str]]]) -> list[list[Any]]:
        """HMGET of each (key, fields) in one round trip; no fields, no answers."""
        pipe = self._redis.pipeline(transaction=False)
        for key, fields in asked:
            if fields:
                pipe.hmget(key, list(fields))
        answers = iter(await pipe.execute() if len(pipe) else [])
        return [next(answers) if fields else [] for _, fields in asked]

    async def mark_seen(self, user_ids: Sequence[str]) -> None:
        """The users a Lucca page listed."""
        pipe = self._redis.pipeline(transaction=False)
        if user_ids:
            pipe.sadd(self._key("seen"), *user_ids)
        pipe.expire(self._key("seen"), RUN_KEY_TTL)
        await pipe.execute()

    async def mark(self, part: str, user_ids: Sequence[str]) -> None:
        """Users the finish is done with: checked by id ("checked"), decided again before
        the guard weighs them ("redecided"), or suspended ("applied"); a finish resumed, or
        continued by its next job, skips them."""
        if user_ids:
            await self._redis.sadd(self._key(part), *user_ids)
            await self._redis.expire(self._key(part), RUN_KEY_TTL)

    async def keep_undecided(self, user_ids: Sequence[str]) -> None:
        """Users listed before the run saw the skip field on anyone: the finish decides them."""
        if user_ids:
            await self._redis.sadd(self._key("undecided"), *user_ids)
            await self._redis.expire(self._key("undecided"), RUN_KEY_TTL)

    async def keep_pending(
        self, suspensions: Mapping[str, str], follow_ups: Mapping[str, str]
    ) -> None:
        """Suspensions (user -> reason) and follow-ups (user -> manager) for the finish."""
        pipe = self._redis.pipeline(transaction=False)
        for user_id, reason in suspensions.items():
            pipe.hset(self._key("suspend"), user_id, reason)
        for user_id, manager_id in follow_ups.items():
            pipe.hset(self._key("follow"), user_id, manager_id)
        for part in ("suspend", "follow"):
            pipe.expire(self._key(part), RUN_KEY_TTL)
        await pipe.execute()

    async def retry_later(self, user_ids: Iterable[str]) -> None:
        ids = list(user_ids)
        await self._redis.sadd(self._key("retry"), *ids)
        await self._redis.expire(self._key("retry"), RUN_KEY_TTL)

    async def keep_due(self, suspensions: Mapping[str, str]) -> None:
        """Suspensions decided again at the finish and still due (user -> reason)."""
        if suspensions:
            await self._redis.hset(self._key("due"), mapping=dict(suspensions))
            await self._redis.expire(self._key("due"), RUN_KEY_TTL)

    async def still_due(self) -> dict[str, str]:
        raw = await self._redis.hgetall(self._key("due"))
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def follow_ups(self) -> dict[str, str]:
        raw = await self._redis.hgetall(self._key("follow"))
        return {user.decode(): manager.decode() for user, manager in raw.items()}

    async def suspensions(self) -> dict[str, str]:
        raw = await self._redis.hgetall(self._key("suspend"))
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def members(self, part: str) -> set[str]:
        """A set part: "seen", "managed", "retry", "undecided", "checked", "redecided" or
        "applied"."""
        return {m.decode() for m in await self._redis.smembers(self._key(part))}

"""The fleet benchmark's view of its Redis: memory, command counts, the queue, a key census.

Every command this module sends is counted in `Probe.own`, and `commands()` subtracts them:
the figures per webhook and per employee are the service's commands alone (INFO commandstats
counts every client's).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis

from app.store import history_blob, keys

# How far ahead a queued job still counts as pending work: deferrals (cooldown, retries, a
# budget wait) are seconds away; a contract end's re-check, days away, is not "work left".
PENDING_HORIZON_MS = 60_000
TTL_SAMPLE = 20  # keys per class whose expiry is read
# Key kinds (the part after `t:{tenant}:`) whose next part is an employee id.
PER_EMPLOYEE = frozenset(
    {"gen", "noticed", "failures", "busy", "hist", "lucca-read", "awaiting-manager", "profile"}
)
NEWEST_SAMPLE = 500  # histories whose newest entry's action is read


@dataclass
class KeyClass:
    """Keys of one shape (`t:{t}:hist:{user}`): how many, their bytes, history entries, TTLs."""

    keys: int = 0
    bytes: int = 0
    entries: int = 0  # for the histories: their entries (a frame's occurrences each count)
    ttl_s: list[float] = field(default_factory=list)  # a sample; -1: no expiry
    newest: Counter[str] = field(default_factory=Counter)  # history: newest entries' actions

    def document(self) -> dict[str, Any]:
        ttls = [t for t in self.ttl_s if t >= 0]
        return {
            "keys": self.keys,
            "bytes": self.bytes,
            "entries": self.entries,
            "bytes_per_key": round(self.bytes / self.keys, 1) if self.keys else 0,
            "expires": bool(ttls) and len(ttls) == len(self.ttl_s),
            "ttl_max_s": round(max(ttls)) if ttls else None,
            **({"newest_actions_sampled": dict(self.newest)} if self.newest else {}),
        }


def _shape(parts: Iterable[str]) -> str:
    """Parts that carry a digit (ids, dates, minutes, run ids) become `{id}`."""
    return ":".join("{id}" if any(c.isdigit() for c in p) else p for p in parts)


def classify(key: str, full_runs: frozenset[tuple[str, str]]) -> str:
    """The shape of a key: tenant, employee and run ids replaced by placeholders; a run's keys
    say whether the run was a full one (`full_runs`: (tenant, run id)) or a webhook's."""
    if key.startswith("lucca:"):  # lucca:<base url, colons and all>:<part>
        return "lucca:{host}:" + key.rsplit(":", 1)[1]
    parts = key.split(":")
    if parts[0] == "tenant" and len(parts) >= 3:
        return "tenant:{t}:" + _shape(parts[2:])
    if parts[0] == "arq" and len(parts) >= 2:
        return "arq:" + parts[1] + (":" + parts[2].split(":")[0] if len(parts) > 2 else "")
    if parts[0] != "t" or len(parts) < 3:
        return _shape(parts)
    tenant, kind, rest = parts[1], parts[2], parts[3:]
    if kind == "run" and rest:
        mode = "full" if (tenant, rest[0]) in full_runs else "webhook"
        return f"t:{{t}}:run:{{{mode} run}}" + "".join(f":{p}" for p in rest[1:])
    if kind in PER_EMPLOYEE and rest:
        return f"t:{{t}}:{kind}:{{user}}"
    return "t:{t}:" + _shape([kind, *rest])


class Probe:
    """One connection to the benchmark's Redis, counting the commands it sends itself."""

    def __init__(self, url: str) -> None:
        # One connection, waited for by concurrent callers: connecting costs commands too.
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=1, timeout=None)
        self.redis = aioredis.Redis(connection_pool=pool)
        self.own: Counter[str] = Counter()

    async def aclose(self) -> None:
        await self.redis.aclose()

    async def used_memory(self) -> int:
        self.own["info"] += 1
        return int((await self.redis.info("memory"))["used_memory"])

    async def commands(self) -> dict[str, int]:
        """Calls per command since Redis started, less the ones this probe sent (before this
        INFO: the INFO that reads the stats is not in them yet)."""
        own = dict(self.own)
        stats = await self.redis.info("commandstats")
        self.own["info"] += 1
        calls = {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in stats.items()
            if isinstance(value, dict)
        }
        return {name: n - own.get(name, 0) for name, n in calls.items()}

    async def pending_jobs(self) -> int:
        """Jobs queued to start within the horizon, running ones included (ARQ removes a job
        from its queue when it ends)."""
        self.own["zcount"] += 1
        horizon = int(time.time() * 1000) + PENDING_HORIZON_MS
        return int(await self.redis.zcount(keys.queue(), "-inf", horizon))

    async def drain(self, within: float, every: float = 0.25) -> float:
        """Wait until no job is pending twice in a row; the seconds it took (inf: not within)."""
        started = time.perf_counter()
        empty = 0
        while time.perf_counter() - started < within:
            empty = empty + 1 if await self.pending_jobs() == 0 else 0
            if empty >= 2:
                return time.perf_counter() - started
            await asyncio.sleep(every)
        return float("inf")

    async def run_states(self, runs: list[tuple[str, str]]) -> Counter[str]:
        """How many of these (tenant, run id) are in each state."""
        pipe = self.redis.pipeline(transaction=False)
        for tenant, run_id in runs:
            pipe.hget(keys.run(tenant, run_id), "state")
        self.own["hget"] += len(runs)
        states = await pipe.execute()
        return Counter((s or b"expired").decode() for s in states)

    async def ended(self, tenant: str, run_id: str) -> bool:
        """Whether the run is done, failed or held."""
        self.own["hget"] += 1
        state = await self.redis.hget(keys.run(tenant, run_id), "state")
        return state in {b"done", b"failed", b"held"}

    async def linked(self, tenant: str) -> dict[str, str]:
        """Lucca id -> Elevo id of the tenant's employees that have a profile (its id map)."""
        self.own["hgetall"] += 1
        found = await self.redis.hgetall(keys.idmap(tenant))
        return {k.decode(): v.decode() for k, v in found.items()}

    async def census(
        self, full_runs: frozenset[tuple[str, str]], batch: int = 2000
    ) -> dict[str, KeyClass]:
        """Every key, by shape: count, MEMORY USAGE bytes, history entries, a TTL sample."""
        found: dict[str, KeyClass] = {}
        cursor = 0
        while True:
            self.own["scan"] += 1
            cursor, names = await self.redis.scan(cursor, count=batch)
            await self._measure([n.decode() for n in names], full_runs, found)
            if cursor == 0:
                return found

    async def _measure(
        self, names: list[str], full_runs: frozenset[tuple[str, str]], found: dict[str, KeyClass]
    ) -> None:
        pipe = self.redis.pipeline(transaction=False)
        plan: list[tuple[KeyClass, str]] = []
        for name in names:
            shape = found.setdefault(classify(name, full_runs), KeyClass())
            pipe.memory_usage(name)
            plan.append((shape, "bytes"))
            self.own["memory|usage"] += 1
            if ":hist:" in name:
                pipe.get(name)
                plan.append((shape, "history"))
                self.own["get"] += 1
            if shape.keys < TTL_SAMPLE:
                pipe.pttl(name)
                plan.append((shape, "ttl"))
                self.own["pttl"] += 1
            shape.keys += 1
        for (shape, what), value in zip(plan, await pipe.execute(), strict=True):
            if what == "bytes":
                shape.bytes += int(value or 0)
            elif what == "history":
                count_history(shape, value)
            else:
                shape.ttl_s.append(value / 1000 if value >= 0 else -1.0)


def count_history(shape: KeyClass, blob: bytes | None) -> None:
    """A history's entries, and (for the first few) its newest entry's action."""
    frames = list(history_blob.frames(blob))
    shape.entries += sum(len(frame.occurrences) for frame in frames)
    if sum(shape.newest.values()) < NEWEST_SAMPLE:
        newest = orjson.loads(history_blob.inflate(frames[0].body)) if frames else {}
        shape.newest[str(newest.get("action", "none"))] += 1


def census_document(found: Mapping[str, KeyClass]) -> dict[str, dict[str, Any]]:
    return {name: found[name].document() for name in sorted(found)}

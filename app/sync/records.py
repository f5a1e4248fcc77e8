"""What the sync did and why: per-user history, last errors, and run records (all in Redis)."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

from app.core.decision import Decision
from app.metrics import DECISIONS
from app.sync import keys

HISTORY_LENGTH = 200

# A step re-run after a retry finds its own earlier writes done and says "unchanged", and a
# profile created early in a run may be updated later (its manager came after it): the run
# still did what the first pass did, so a lesser outcome never hides a creation or a write.
_NOTE_OUTCOME = """
local previous = redis.call('HGET', KEYS[1], ARGV[1])
local new = ARGV[2]
local lesser = new == 'unchanged' or new == 'superseded'
  or (new == 'update' and (previous == 'create' or previous == 'adopt'))
if not (previous and lesser) then redis.call('HSET', KEYS[1], ARGV[1], new) end
return redis.call('HLEN', KEYS[1])
"""
RUN_STATES = ("queued", "running", "done", "failed", "held")


def utcnow_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value


def draft_run(
    *,
    mode: str,
    trigger: str,
    dry_run: bool = False,
    expected: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A new run record's fields; its id sorts by creation time."""
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    fields: dict[str, Any] = {
        "id": run_id,
        "mode": mode,
        "trigger": trigger,
        "dry_run": int(dry_run),
        "state": "queued",
        "created_at": utcnow_iso(),
    }
    if expected is not None:
        fields["expected"] = expected
    if extra:
        fields.update({k: orjson.dumps(v).decode() for k, v in extra.items()})
    return fields


class Records:
    def __init__(self, redis: ArqRedis, retention_seconds: int) -> None:
        self._redis = redis
        self._retention = retention_seconds

    # -- per user -------------------------------------------------------------------------

    async def decision(
        self,
        tenant: str,
        decision: Decision,
        *,
        run_id: str | None,
        written: bool,
        error: str | None = None,
        dry_run: bool = False,
    ) -> None:
        """Record one decision in the user's history, the tenant's errors and the run."""
        if not dry_run:
            DECISIONS.labels(tenant, decision.action.value).inc()
        entry = decision.plan_entry() | {
            "at": utcnow_iso(),
            "run": run_id,
            "written": written,
            "dry_run": dry_run,
        }
        if error:
            entry["error"] = error
        blob = orjson.dumps(entry, default=str)
        pipe = self._redis.pipeline(transaction=False)
        history = keys.history(tenant, decision.user)
        pipe.lpush(history, blob)
        pipe.ltrim(history, 0, HISTORY_LENGTH - 1)
        pipe.expire(history, self._retention)
        if dry_run:
            pass  # a plan is no evidence of a failing user, nor of a fixed one
        elif error:
            pipe.hset(keys.user_errors(tenant), decision.user, blob.decode())
        else:
            pipe.hdel(keys.user_errors(tenant), decision.user)
        await pipe.execute()
        if run_id is not None:
            plan_entry = entry if dry_run else None
            await self.count(tenant, run_id, decision.user, decision.action.value, plan_entry)
            if error and not dry_run:
                await self._redis.hset(keys.run_errors(tenant, run_id), decision.user, error)

    async def history(self, tenant: str, user_id: str) -> list[dict[str, Any]]:
        raw = await self._redis.lrange(keys.history(tenant, user_id), 0, -1)
        return [orjson.loads(item) for item in raw]

    async def user_errors(self, tenant: str) -> dict[str, Any]:
        raw = await self._redis.hgetall(keys.user_errors(tenant))
        return {_text(k) or "": orjson.loads(v) for k, v in raw.items()}

    # -- runs -----------------------------------------------------------------------------

    async def create_run(
        self,
        tenant: str,
        *,
        mode: str,
        trigger: str,
        dry_run: bool = False,
        expected: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        fields = draft_run(
            mode=mode, trigger=trigger, dry_run=dry_run, expected=expected, extra=extra
        )
        pipe = self._redis.pipeline(transaction=True)
        self.stage_run(pipe, tenant, fields)
        await pipe.execute()
        return str(fields["id"])

    def stage_run(self, pipe: Pipeline, tenant: str, fields: Mapping[str, Any]) -> None:
        """Add a new run record's writes to a pipeline (so it lands with its jobs)."""
        run_id = str(fields["id"])
        pipe.hset(keys.run(tenant, run_id), mapping=dict(fields))
        pipe.expire(keys.run(tenant, run_id), self._retention)
        pipe.zadd(keys.runs(tenant), {run_id: datetime.now(UTC).timestamp()})

    async def set_run(self, tenant: str, run_id: str, **fields: Any) -> None:
        if "state" in fields and fields["state"] in {"done", "failed", "held"}:
            fields.setdefault("finished_at", utcnow_iso())
        if fields.get("state") == "running":
            fields.setdefault("started_at", utcnow_iso())
        encoded = {k: v if isinstance(v, str | int) else orjson.dumps(v) for k, v in fields.items()}
        await self._redis.hset(keys.run(tenant, run_id), mapping=encoded)

    async def count(
        self,
        tenant: str,
        run_id: str,
        user_id: str,
        action: str,
        plan_entry: Mapping[str, Any] | None = None,
    ) -> None:
        """Note a user's outcome in a run; a run that knows how many to expect finishes itself.

        One entry per user: a step re-run after a crash or a retry neither counts a user twice
        nor repeats it in the plan, and its "unchanged" does not hide what the first pass did.
        """
        run_key = keys.run(tenant, run_id)
        users_key = keys.run_users(tenant, run_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.eval(_NOTE_OUTCOME, 1, users_key, user_id, action)
        pipe.hget(run_key, "expected")
        pipe.hget(run_key, "state")
        pipe.expire(users_key, self._retention)
        if plan_entry is not None:
            plan_key = keys.run_plan(tenant, run_id)
            pipe.hset(plan_key, user_id, orjson.dumps(plan_entry, default=str).decode())
            pipe.expire(plan_key, self._retention)
        results = await pipe.execute()
        processed, expected, state = results[0], _text(results[1]), _text(results[2])
        if state in {"queued", "running"} and expected is not None and processed >= int(expected):
            await self.set_run(tenant, run_id, state="done")
        elif state == "queued":
            await self.set_run(tenant, run_id, state="running")

    async def run_fields(self, tenant: str, run_id: str, *names: str) -> dict[str, str] | None:
        """A few fields of a run record, without its counts (cheap on a run of 100k users)."""
        values = await self._redis.hmget(keys.run(tenant, run_id), ["id", *names])
        if values[0] is None:
            return None
        return {n: _text(v) or "" for n, v in zip(["id", *names], values, strict=True)}

    async def get_run(self, tenant: str, run_id: str) -> dict[str, Any] | None:
        raw = await self._redis.hgetall(keys.run(tenant, run_id))
        if not raw:
            return None
        actions = await self._redis.hvals(keys.run_users(tenant, run_id))
        run: dict[str, Any] = {"counts": dict(Counter(a.decode() for a in actions))}
        run["processed"] = len(actions)
        for key_bytes, value_bytes in raw.items():
            key, value = _text(key_bytes) or "", _text(value_bytes) or ""
            if key in {"expected", "dry_run"}:
                run[key] = int(value)
            elif value[:1] in {"[", "{"}:
                run[key] = orjson.loads(value)
            else:
                run[key] = value
        run["dry_run"] = bool(run.get("dry_run"))
        errors = await self._redis.hgetall(keys.run_errors(tenant, run_id))
        run["errors"] = {_text(k): _text(v) for k, v in errors.items()}
        if run["dry_run"]:
            plan = await self._redis.hgetall(keys.run_plan(tenant, run_id))
            run["plan"] = [orjson.loads(plan[k]) for k in sorted(plan, key=int)]
        return run

    async def recent_runs(self, tenant: str, limit: int = 10) -> list[dict[str, Any]]:
        ids = await self._redis.zrevrange(keys.runs(tenant), 0, limit - 1)
        found = []
        for run_id in ids:
            run = await self.get_run(tenant, _text(run_id) or "")
            if run is None:  # expired: forget it
                await self._redis.zrem(keys.runs(tenant), run_id)
            else:
                run.pop("plan", None)
                found.append(run)
        return found

    def stage_note(self, pipe: Pipeline, tenant: str, **facts: str) -> None:
        pipe.hset(keys.status(tenant), mapping=facts)

    async def note(self, tenant: str, **facts: str) -> None:
        """Tenant-level facts for GET /sync/{tenant} (last event, last full run, flags)."""
        await self._redis.hset(keys.status(tenant), mapping=facts)

    async def notes(self, tenant: str) -> dict[str, str]:
        raw = await self._redis.hgetall(keys.status(tenant))
        return {_text(k) or "": _text(v) or "" for k, v in raw.items()}

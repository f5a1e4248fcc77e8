"""Run records: the one writer of a run's hash, its per-user outcomes, errors and plan.

Layout (app/store/keys.py): `run` a hash of the run's fields, as text; `run_users` Lucca id ->
outcome; `run_errors` Lucca id -> error; `run_plan` Lucca id -> plan entry (dry runs);
`runs` the tenant's run ids by start time. The field names and encodings are a stored format.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

from app.store import keys
from app.store.run_progress import stage_progress


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    HELD = "held"

    @property
    def final(self) -> bool:
        return self in {RunState.DONE, RunState.FAILED, RunState.HELD}


class Resolution(StrEnum):
    """How a held run ended: an operator confirmed or dismissed it, or a later run weighed
    the tenant again (held again, or done)."""

    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"
    SUPERSEDED = "superseded"


class RunMode(StrEnum):
    FULL = "full"  # a reconciliation of every user
    CHANGES = "changes"  # a poll of what Lucca changed since the last one
    USERS = "users"  # a list of users (an API call, a webhook)
    DEPARTMENT = "department"  # the members of a renamed department
    RELEASE = "release"  # a disconnection: every managed profile's syncSource removed


class TriggerKind(StrEnum):
    API = "api"
    NIGHTLY = "nightly"
    POLL = "poll"
    KEY_REPLACED = "key-replaced"  # a new Lucca key after Lucca refused the old one
    BENCH = "bench"  # bench/worker_throughput.py
    WEBHOOK = "webhook"
    WEBHOOK_MALFORMED = "webhook:malformed"  # an unreadable event: a poll asks Lucca instead
    UNBLOCKED = "unblocked"  # a tenant-level reason cleared: what waited for it (waiting.py)
    RESUMED = "resumed"  # a paused tenant resumed: what waited, and the runs asked meanwhile
    SKIP_FIELD_CHECK = "skip-field-check"  # a complete listing for an employee held on one read
    WEBHOOK_COALESCED = "webhook-coalesced"  # events beyond the tenant's ingest rate
    LUCCA_REPLAY = "lucca-replay"  # the events of an outage, listed by Lucca (issue 15)


@dataclass(frozen=True, slots=True)
class Trigger:
    """What started a run; a webhook's trigger carries its topic."""

    kind: TriggerKind
    topic: str | None = None

    @classmethod
    def webhook(cls, topic: str) -> Trigger:
        return cls(TriggerKind.WEBHOOK, topic)

    @classmethod
    def malformed_webhook(cls, topic: str) -> Trigger:
        return cls(TriggerKind.WEBHOOK_MALFORMED, topic)

    @classmethod
    def parse(cls, text: str) -> Trigger:
        for kind in (TriggerKind.WEBHOOK_MALFORMED, TriggerKind.WEBHOOK):
            if text.startswith(f"{kind.value}:"):
                return cls(kind, text[len(kind.value) + 1 :])
        return cls(TriggerKind(text))

    @property
    def from_webhook(self) -> bool:
        return self.kind in {TriggerKind.WEBHOOK, TriggerKind.WEBHOOK_MALFORMED}

    def __str__(self) -> str:
        return self.kind.value if self.topic is None else f"{self.kind.value}:{self.topic}"


def utcnow_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run record not yet written: its id sorts by creation time."""

    id: str
    created_at: str
    fields: Mapping[str, str | int]


def draft_run(
    *,
    mode: RunMode,
    trigger: Trigger,
    dry_run: bool = False,
    expected: int | None = None,
    confirms: str | None = None,
    reason: str | None = None,
) -> NewRun:
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    created_at = utcnow_iso()
    fields: dict[str, str | int] = {
        "id": run_id,
        "mode": mode.value,
        "trigger": str(trigger),
        "dry_run": int(dry_run),
        "state": RunState.QUEUED.value,
        "created_at": created_at,
    }
    if expected is not None:
        fields["expected"] = expected
    if confirms is not None:
        fields["confirms"] = confirms  # the held run whose list this run may suspend
    # Stored JSON-encoded, as the first version stored every "extra" field.
    if reason is not None:
        fields["reason"] = orjson.dumps(reason).decode()
    return NewRun(id=run_id, created_at=created_at, fields=fields)


# The fields a job reads (cheap on a run of 100k users: no counts).
_HEADER = (
    "id",
    "mode",
    "trigger",
    "state",
    "dry_run",
    "created_at",
    "expected",
    "confirms",
    "lucca_users",
    "lucca_unreadable",
    "active_managed",
    "skip_field_shown",
    "resolution",
    "resolved_by_run",
)


@dataclass(frozen=True, slots=True)
class Run:
    """A run record's fields, typed."""

    id: str
    mode: RunMode
    trigger: Trigger
    state: RunState
    dry_run: bool
    created_at: str
    expected: int | None = None
    confirms: str | None = None  # a confirmation: the held run it approves
    lucca_users: int = 0  # counted by a reconciliation's pages
    lucca_unreadable: int = 0  # Lucca items without a usable id, in a reconciliation's pages
    active_managed: int = 0  # active managed profiles in a reconciliation's snapshot
    skip_field_shown: int = 0  # a reconciliation's listed users showing the skip field
    resolution: Resolution | None = None  # a held run's end
    resolved_by_run: str | None = None  # the run that confirmed or superseded it

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> Run:
        expected = fields.get("expected")
        resolution = fields.get("resolution")
        return cls(
            id=fields["id"],
            mode=RunMode(fields["mode"]),
            trigger=Trigger.parse(fields["trigger"]),
            state=RunState(fields["state"]),
            dry_run=fields.get("dry_run") == "1",
            created_at=fields.get("created_at", ""),
            expected=int(expected) if expected else None,
            confirms=fields.get("confirms") or None,
            lucca_users=int(fields.get("lucca_users") or 0),
            lucca_unreadable=int(fields.get("lucca_unreadable") or 0),
            active_managed=int(fields.get("active_managed") or 0),
            skip_field_shown=int(fields.get("skip_field_shown") or 0),
            resolution=Resolution(resolution) if resolution else None,
            resolved_by_run=fields.get("resolved_by_run") or None,
        )


@dataclass(frozen=True, slots=True)
class RunReport:
    """A run with its outcomes, as GET /sync/{tenant}/runs/{id} shows it."""

    run: Run
    fields: Mapping[str, str]  # the stored hash, in its order, as text
    counts: Mapping[str, int]
    processed: int
    errors: Mapping[str, str]
    plan: Sequence[Any] | None  # a dry run's plan entries, by Lucca id

    def document(self, *, with_plan: bool = True) -> dict[str, Any]:
        document: dict[str, Any] = {"counts": dict(self.counts), "processed": self.processed}
        for key, value in self.fields.items():
            if key in {"expected", "dry_run", "cursor"}:
                document[key] = int(value)
            elif value[:1] in {"[", "{"}:
                document[key] = orjson.loads(value)
            else:
                document[key] = value
        document["dry_run"] = bool(document.get("dry_run"))
        document["errors"] = dict(self.errors)
        if with_plan and self.plan is not None:
            document["plan"] = list(self.plan)
        return document


# A held run is resolved once: the first of a confirmation, a dismissal or a later run wins.
_RESOLVE = """
if redis.call('HEXISTS', KEYS[1], 'state') == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], 'resolution', ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'resolved_at', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'resolved_by', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'resolved_by_run', ARGV[4]) end
return 1
"""

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


# A step's counts are added once: a step retried after it counted adds nothing.
_COUNT_ONCE = """
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  for i = 3, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""


class RunStore:
    def __init__(self, redis: ArqRedis, retention_seconds: int) -> None:
        self._redis = redis
        self._retention = retention_seconds

    async def create(self, tenant: str, new: NewRun) -> str:
        pipe = self._redis.pipeline(transaction=True)
        self.stage(pipe, tenant, new)
        await pipe.execute()
        return new.id

    def stage(self, pipe: Pipeline, tenant: str, new: NewRun) -> None:
        """Add a new run record's writes to a pipeline (so it lands with its jobs); the index
        forgets the runs older than the retention, whose records have expired."""
        now = datetime.now(UTC).timestamp()
        pipe.hset(keys.run(tenant, new.id), mapping=dict(new.fields))
        pipe.expire(keys.run(tenant, new.id), self._retention)
        pipe.zadd(keys.runs(tenant), {new.id: now})
        pipe.zremrangebyscore(keys.runs(tenant), "-inf", now - self._retention)
        pipe.expire(keys.runs(tenant), self._retention)

    async def set_state(
        self,
        tenant: str,
        run_id: str,
        state: RunState,
        *,
        expected: int | None = None,
        error: str | None = None,
        merged_into: str | None = None,
        held: Sequence[str] | None = None,
        waiting: str | None = None,
    ) -> None:
        """`waiting`: why a run ended without doing its work (sync-rules.md, "nothing waits for
        ever"): what it held is applied once that reason clears."""
        fields: dict[str, str | int | bytes] = {"state": state.value}
        if waiting is not None:
            fields["waiting"] = waiting
        if expected is not None:
            fields["expected"] = expected
        if error is not None:
            fields["error"] = error
        if merged_into is not None:
            fields["merged_into"] = merged_into
        if held is not None:
            fields["held"] = orjson.dumps(list(held))
        if state.final:
            fields["finished_at"] = utcnow_iso()
        if state is RunState.RUNNING:
            fields["started_at"] = utcnow_iso()
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(keys.run(tenant, run_id), mapping=fields)
        # A run kept past its retention by a late step must not stay for ever.
        pipe.expire(keys.run(tenant, run_id), self._retention)
        await pipe.execute()

    async def note_waiting(self, tenant: str, run_id: str, waiting: str) -> None:
        """Some of the run's users wait for a tenant-level reason (they are applied once it
        clears, by a run of their own); the run says so, whatever its state."""
        await self._redis.hset(keys.run(tenant, run_id), "waiting", waiting)

    async def resolve(
        self,
        tenant: str,
        run_id: str,
        resolution: Resolution,
        *,
        by: str | None = None,
        by_run: str | None = None,
    ) -> bool:
        """Record how a held run ended (`by`: the operator's token; `by_run`: the run that
        confirmed or superseded it); False when it was resolved already, or is gone."""
        done = await self._redis.eval(
            _RESOLVE,
            1,
            keys.run(tenant, run_id),
            resolution.value,
            utcnow_iso(),
            by or "",
            by_run or "",
        )
        return bool(done)

    async def held_users(self, tenant: str, run_id: str) -> list[str]:
        """The list a held run holds (empty when it is gone or held nobody)."""
        raw = _text(await self._redis.hget(keys.run(tenant, run_id), "held"))
        return [str(user) for user in orjson.loads(raw)] if raw else []

    async def count_once(
        self, tenant: str, run_id: str, step: str, amounts: Mapping[str, int]
    ) -> None:
        """Add a reconciliation step's counts ("lucca_users", "lucca_unreadable",
        "active_managed", "skip_field_shown") once, however often the step (`step`: its name
        and argument) runs."""
        pairs = [str(part) for field, amount in amounts.items() for part in (field, amount)]
        await self._redis.eval(
            _COUNT_ONCE,
            2,
            keys.run(tenant, run_id),
            keys.run_part(tenant, run_id, "counted"),
            step,
            str(self._retention),
            *pairs,
        )

    @staticmethod
    def stage_cursor(pipe: Pipeline, tenant: str, run_id: str, offset: int) -> None:
        """Where a listing read page by page resumes (app/store/progress.py): shown on the run
        as `cursor`, the offset of the next page to read."""
        pipe.hset(keys.run(tenant, run_id), "cursor", str(offset))

    @staticmethod
    async def cursor(redis: ArqRedis, tenant: str, run_id: str) -> int:
        return int(await redis.hget(keys.run(tenant, run_id), "cursor") or 0)

    async def pin(self, tenant: str, run_id: str, field: str, value: str) -> str:
        """A value the first try of a step fixes and its retries reuse (a poll's start):
        `field` set unless it is, and its value."""
        key = keys.run(tenant, run_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hsetnx(key, field, value)
        pipe.hget(key, field)
        _, pinned = await pipe.execute()
        return _text(pinned) or value

    async def outcome_users(self, tenant: str, run_id: str) -> set[str]:
        """The users with an outcome in the run so far (a resumed plan skips them)."""
        return {
            _text(user) or "" for user in await self._redis.hkeys(keys.run_users(tenant, run_id))
        }

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
        stage_progress(pipe, tenant, run_id)
        if plan_entry is not None:
            plan_key = keys.run_plan(tenant, run_id)
            pipe.hset(plan_key, user_id, orjson.dumps(plan_entry, default=str).decode())
            pipe.expire(plan_key, self._retention)
        results = await pipe.execute()
        processed, expected, state = results[0], _text(results[1]), _text(results[2])
        if state in {"queued", "running"} and expected is not None and processed >= int(expected):
            await self.set_state(tenant, run_id, RunState.DONE)
        elif state == "queued":
            await self.set_state(tenant, run_id, RunState.RUNNING)

    async def note_error(self, tenant: str, run_id: str, user_id: str, error: str) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(keys.run_errors(tenant, run_id), user_id, error)
        pipe.expire(keys.run_errors(tenant, run_id), self._retention)
        await pipe.execute()

    async def get(self, tenant: str, run_id: str) -> Run | None:
        """The run's fields without its counts (cheap on a run of 100k users)."""
        values = await self._redis.hmget(keys.run(tenant, run_id), list(_HEADER))
        if values[0] is None:
            return None
        fields = {n: text for n, v in zip(_HEADER, values, strict=True) if (text := _text(v))}
        return Run.from_fields(fields)

    async def report(self, tenant: str, run_id: str) -> RunReport | None:
        raw = await self._redis.hgetall(keys.run(tenant, run_id))
        if not raw:
            return None
        fields = {_text(k) or "": _text(v) or "" for k, v in raw.items()}
        actions = await self._redis.hvals(keys.run_users(tenant, run_id))
        errors = await self._redis.hgetall(keys.run_errors(tenant, run_id))
        run = Run.from_fields(fields)
        plan = None
        if run.dry_run:
            entries = await self._redis.hgetall(keys.run_plan(tenant, run_id))
            plan = [orjson.loads(entries[k]) for k in sorted(entries, key=int)]
        return RunReport(
            run=run,
            fields=fields,
            counts=dict(Counter(a.decode() for a in actions)),
            processed=len(actions),
            errors={_text(k) or "": _text(v) or "" for k, v in errors.items()},
            plan=plan,
        )

    async def recent(self, tenant: str, limit: int = 10) -> list[RunReport]:
        ids = await self._redis.zrevrange(keys.runs(tenant), 0, limit - 1)
        found = []
        for run_id in ids:
            report = await self.report(tenant, _text(run_id) or "")
            if report is None:  # expired: forget it
                await self._redis.zrem(keys.runs(tenant), run_id)
            else:
                found.append(report)
        return found

    async def latest(self, tenant: str, limit: int) -> list[Run]:
        """The newest runs' headers (no counts: cheap whatever their size), newest first."""
        ids = await self._redis.zrevrange(keys.runs(tenant), 0, limit - 1)
        found = [await self.get(tenant, _text(run_id) or "") for run_id in ids]
        return [run for run in found if run is not None]

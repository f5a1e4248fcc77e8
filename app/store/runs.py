"""Run records: the one writer of a run's hash, its per-user outcomes, errors and plan.

Layout (app/store/keys.py): `run` a hash of the run's fields, as text; `run_users` Lucca id ->
outcome; `run_errors` Lucca id -> error; `run_plan` Lucca id -> plan entry (dry runs);
the tenant's run ids by start time (app/store/run_index.py). A webhook's run is kept
WEBHOOK_RUN_RETENTION_SECONDS, its hour's numbers longer (app/store/webhook_hours.py); every
other run RUN_RETENTION_SECONDS. The field names and encodings are a stored format.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

from app.store import keys, run_end, run_index, webhook_hours
from app.store.redis_text import as_text
from app.store.run_counts import CountAnswers, Counted, Retentions, StagedCount, stage_outcomes
from app.store.run_model import (
    NewRun,
    Resolution,
    Run,
    RunReport,
    RunState,
    Trigger,
    utcnow_iso,
)
from app.store.run_progress import stage_progress

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
# ARGV: user, outcome, user, outcome, ... (a page's outcomes in one call).
# A step's counts are added once: a step retried after it counted adds nothing.
_COUNT_ONCE = """
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  for i = 3, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""

# A run's record lives as long as its kind's runs (KEYS[1]; ARGV[1]: seconds, ARGV[2]: a
# webhook's), from now: a run kept past its retention by a late step must not stay for ever.
_EXPIRE_RUN = (
    """
local trigger = redis.call('HGET', KEYS[1], 'trigger') or ''
if """
    + Trigger.lua_from_webhook("trigger")
    + """ then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return redis.call('EXPIRE', KEYS[1], ARGV[1])
"""
)
# A run's errors live as long as its record (KEYS[1]; ARGV[1]: seconds when it has no expiry).
_EXPIRE_AS_RUN = """
local left = redis.call('PTTL', KEYS[1])
if left > 0 then return redis.call('PEXPIRE', KEYS[2], left) end
return redis.call('EXPIRE', KEYS[2], ARGV[1])
"""


class RunStore:
    def __init__(
        self, redis: ArqRedis, retention_seconds: int, webhook_retention_seconds: int | None = None
    ) -> None:
        """`webhook_retention_seconds`: a webhook's run's (WEBHOOK_RUN_RETENTION_SECONDS; by
        default, as long as every other)."""
        self._redis = redis
        self._kept = Retentions(retention_seconds, webhook_retention_seconds or retention_seconds)

    async def create(self, tenant: str, new: NewRun) -> str:
        pipe = self._redis.pipeline(transaction=True)
        self.stage(pipe, tenant, new)
        await pipe.execute()
        return new.id

    def stage(self, pipe: Pipeline, tenant: str, new: NewRun) -> None:
        """Add a new run record's writes to a pipeline (so it lands with its jobs); its index
        forgets the runs older than their retention, whose records have expired. A webhook's
        run counts in its hour's aggregate."""
        webhook = Trigger.parse(str(new.fields["trigger"])).from_webhook
        retention = self._kept.webhook_runs if webhook else self._kept.runs
        pipe.hset(keys.run(tenant, new.id), mapping=dict(new.fields))
        pipe.expire(keys.run(tenant, new.id), retention)
        at = datetime.now(UTC).timestamp()
        run_index.stage_add(pipe, tenant, new.id, webhook=webhook, at=at, retention=retention)
        if webhook:
            webhook_hours.stage_created(pipe, webhook_hours.slot(tenant, new.id, self._kept.runs))

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
        working_sets: bool = True,
    ) -> None:
        """`waiting`: why a run ended without doing its work (sync-rules.md, "nothing waits for
        ever"): what it held is applied once that reason clears. A run that ends keeps its
        `unchanged` outcomes as a count only, and one done or failed loses its working sets
        (`working_sets` False: it has none, a webhook's run: nothing to do)."""
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
        self._stage_expiry(pipe, tenant, run_id)
        if state.final:
            self._stage_end(pipe, tenant, run_id, state, working_sets=working_sets)
        await pipe.execute()
        if working_sets and state.final:
            await self._fold(tenant, run_id)

    def _stage_expiry(self, pipe: Pipeline, tenant: str, run_id: str) -> None:
        kept = (self._kept.runs, self._kept.webhook_runs)
        pipe.eval(_EXPIRE_RUN, 1, keys.run(tenant, run_id), *map(str, kept))

    async def ended(self, tenant: str, run_id: str, *, working_sets: bool) -> None:
        """What a run that a count ended (its state already `done`) does next: as `set_state`."""
        pipe = self._redis.pipeline(transaction=True)
        self._stage_end(pipe, tenant, run_id, RunState.DONE, working_sets=working_sets)
        await pipe.execute()
        if working_sets:
            await self._fold(tenant, run_id)

    @staticmethod
    def _stage_end(
        pipe: Pipeline, tenant: str, run_id: str, state: RunState, *, working_sets: bool
    ) -> None:
        # A held run keeps its sets for a day: its review shows the people from its Elevo
        # snapshot, and a finish retried after it held must find what it weighed.
        if working_sets and state in {RunState.DONE, RunState.FAILED}:
            pipe.delete(*keys.run_working_sets(tenant, run_id))
        pipe.hdel(keys.run(tenant, run_id), "progress_at")  # only the watchdog reads it
        if not working_sets:  # a webhook's run: its outcome in the same round trip
            run_end.stage_inline(pipe, tenant, run_id)

    async def _fold(self, tenant: str, run_id: str) -> None:
        await run_end.fold_unchanged(self._redis, tenant, run_id)
        pipe = self._redis.pipeline(transaction=False)
        run_end.stage_inline(pipe, tenant, run_id)
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
        raw = as_text(await self._redis.hget(keys.run(tenant, run_id), "held"))
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
            str(self._kept.runs),
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
        return as_text(pinned) or value

    async def outcome_users(self, tenant: str, run_id: str) -> set[str]:
        """The users with an outcome in the run so far (a resumed plan skips them)."""
        return {as_text(user) for user in await self._redis.hkeys(keys.run_users(tenant, run_id))}

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
        pipe = self._redis.pipeline(transaction=True)
        staged = self.stage_count(pipe, tenant, run_id, [Counted(user_id, action, plan_entry)])
        await self.after_count(tenant, run_id, staged.answers(await pipe.execute()))

    def stage_count(
        self, pipe: Pipeline, tenant: str, run_id: str, counted: Sequence[Counted]
    ) -> StagedCount:
        """Stage `count` for several users (a job's records, a page's) in one pipeline: the run
        settles in the same step (app/store/run_counts.py); its answers go to `after_count`.
        `counted` must not be empty."""
        staged = stage_outcomes(pipe, tenant, run_id, counted, self._kept)
        stage_progress(pipe, tenant, run_id)
        plans = {c.user_id: c.plan_entry for c in counted if c.plan_entry is not None}
        if plans:
            plan_key = keys.run_plan(tenant, run_id)
            encoded = {u: orjson.dumps(e, default=str).decode() for u, e in plans.items()}
            pipe.hset(plan_key, mapping=encoded)
            pipe.expire(plan_key, self._kept.runs)
        return staged

    async def after_count(self, tenant: str, run_id: str, answers: CountAnswers) -> None:
        """A count settled the run's state in its script; one that ended it does the rest."""
        if answers.ended:
            # A webhook's run has no working sets, and its one outcome is worth keeping.
            await self.ended(tenant, run_id, working_sets=not answers.from_webhook)

    @staticmethod
    def stage_error(pipe: Pipeline, tenant: str, run_id: str, errors: Mapping[str, str]) -> None:
        pipe.hset(keys.run_errors(tenant, run_id), mapping=dict(errors))

    def stage_errors_expiry(self, pipe: Pipeline, tenant: str, run_id: str) -> None:
        errors_key = keys.run_errors(tenant, run_id)
        pipe.eval(_EXPIRE_AS_RUN, 2, keys.run(tenant, run_id), errors_key, str(self._kept.runs))

    async def note_error(self, tenant: str, run_id: str, user_id: str, error: str) -> None:
        pipe = self._redis.pipeline(transaction=True)
        self.stage_error(pipe, tenant, run_id, {user_id: error})
        self.stage_errors_expiry(pipe, tenant, run_id)
        await pipe.execute()

    async def get(self, tenant: str, run_id: str) -> Run | None:
        """The run's fields without its counts (cheap on a run of 100k users)."""
        values = await self._redis.hmget(keys.run(tenant, run_id), list(_HEADER))
        if values[0] is None:
            return None
        fields = {n: text for n, v in zip(_HEADER, values, strict=True) if (text := as_text(v))}
        return Run.from_fields(fields)

    async def report(self, tenant: str, run_id: str) -> RunReport | None:
        # One MULTI: a run that ends meanwhile moves its unchanged outcomes from its users into
        # a count in its record (run_end.py), and the reads must see the same side of it.
        pipe = self._redis.pipeline(transaction=True)
        pipe.hgetall(keys.run(tenant, run_id))
        pipe.hvals(keys.run_users(tenant, run_id))
        pipe.hgetall(keys.run_errors(tenant, run_id))
        raw, actions, errors = await pipe.execute()
        if not raw:
            return None
        fields = {as_text(k): as_text(v) for k, v in raw.items()}
        run = Run.from_fields(fields)
        plan = None
        if run.dry_run:
            entries = await self._redis.hgetall(keys.run_plan(tenant, run_id))
            plan = [orjson.loads(entries[k]) for k in sorted(entries, key=int)]
        counts = run_end.with_quiet(Counter(a.decode() for a in actions), fields)
        return RunReport(
            run=run,
            fields={k: v for k, v in fields.items() if k not in run_end.FOLDED},
            counts=counts,
            processed=sum(counts.values()),
            errors={as_text(k): as_text(v) for k, v in errors.items()},
            plan=plan,
        )

    async def recent(self, tenant: str, limit: int = 10) -> list[RunReport]:
        found = []
        for run_id in await run_index.newest(self._redis, tenant, limit):
            report = await self.report(tenant, run_id)
            if report is None:  # expired: forget it
                await run_index.forget(self._redis, tenant, run_id)
            else:
                found.append(report)
        return found

    async def latest(self, tenant: str, limit: int) -> list[Run]:
        """The newest runs' headers (no counts: cheap whatever their size), newest first."""
        ids = await run_index.newest(self._redis, tenant, limit)
        found = [await self.get(tenant, run_id) for run_id in ids]
        return [run for run in found if run is not None]

"""Recording what the sync decided: the user's history, its error, and its run's count.

Every decision other than `unchanged` goes to the employee's history; `unchanged` is only
counted in its run (sync-rules.md). A job's records, or a reconciliation page's, are written
in one round trip (a `DecisionBatch`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from redis.asyncio.client import Pipeline

from app.core.decision import Action, Decision
from app.metrics import DECISIONS
from app.store.records import Records
from app.store.run_counts import CountAnswers, Counted, StagedCount
from app.store.run_model import utcnow_iso
from app.store.runs import RunStore

# Writes of other stores that land with a job's records (a profile copy, a failure count
# cleared): staged into the same pipeline.
Stage = Callable[[Pipeline], None]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one employee's sync decided, whether it wrote it, and the error it met."""

    decision: Decision
    written: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Pending:
    decision: Decision
    run_id: str | None
    entry: dict[str, Any] | None  # None: a quiet `unchanged`, stored nowhere
    error: str | None


def _counter(tenant: str, action: str) -> Any:
    """The labelled child of DECISIONS, looked up once per tenant and action: a page of
    1,000 unchanged employees asked prometheus_client for it 1,000 times."""
    key = (tenant, action)
    child = _COUNTERS.get(key)
    if child is None:
        child = _COUNTERS[key] = DECISIONS.labels(tenant, action)
    return child


_COUNTERS: dict[tuple[str, str], Any] = {}


@dataclass(slots=True)
class DecisionBatch:
    """Decisions recorded together: one pipeline for their history entries, errors, run
    counts and whatever `also` stages. A dry run's go to its run's plan only."""

    records: Records
    runs: RunStore
    tenant: str
    dry_run: bool = False
    _pending: list[_Pending] = field(default_factory=list)
    _also: list[Stage] = field(default_factory=list)
    # Each run counted in so far, as the last flush read it back.
    counted: dict[str, CountAnswers] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._pending)

    def add(
        self, decision: Decision, *, run_id: str | None, written: bool, error: str | None = None
    ) -> None:
        if not self.dry_run:
            _counter(self.tenant, decision.action.value).inc()
        if decision.action is Action.UNCHANGED and not error and not self.dry_run:
            # Only counted (sync-rules.md): no history entry to build.
            self._pending.append(_Pending(decision, run_id, None, None))
            return
        entry = decision.plan_entry() | {
            "at": utcnow_iso(),
            "run": run_id,
            "written": written,
            "dry_run": self.dry_run,
        }
        if error:
            entry["error"] = error
        self._pending.append(_Pending(decision, run_id, entry, error))

    def also(self, stage: Stage) -> None:
        """Another store's write, sent with the next flush."""
        self._also.append(stage)

    async def flush(self) -> set[str]:
        """Write what was added, in one round trip (then a run that counted all it expects is
        finished); the users whose sync failed before and did not now."""
        pending, also = self._pending, self._also
        self._pending, self._also = [], []
        if not pending and not also:
            return set()
        pipe = self.records.pipeline()
        asked = self._stage_records(pipe, pending)
        counts = self._stage_counts(pipe, pending)
        for stage in also:
            stage(pipe)
        results = await pipe.execute()
        for run_id, staged in counts.items():
            self.counted[run_id] = staged.answers(results)
            await self.runs.after_count(self.tenant, run_id, self.counted[run_id])
        return self._recovered(asked, results)

    def _stage_records(self, pipe: Pipeline, pending: list[_Pending]) -> dict[int, list[str]]:
        """Stage each decision's history entry and error mark; the commands whose answers tell
        who recovered (position -> the users they ask about)."""
        # A plan lives under its run only: it changes no employee's history, and is no
        # evidence of a failing user, nor of a fixed one.
        if self.dry_run:
            return {}
        asked: dict[int, list[str]] = {}
        quiet: list[str] = []  # consecutive quiet `unchanged`: their errors cleared at once
        for item in pending:
            if item.entry is None:
                quiet.append(item.decision.user)
                continue
            if quiet:
                asked[self.records.stage_clear(pipe, self.tenant, quiet)] = quiet
                quiet = []
            at = self.records.stage_add(
                pipe, self.tenant, item.decision.user, item.entry, failing=bool(item.error)
            )
            if at is not None:
                asked[at] = [item.decision.user]
        if quiet:
            asked[self.records.stage_clear(pipe, self.tenant, quiet)] = quiet
        return asked

    @staticmethod
    def _recovered(asked: dict[int, list[str]], results: list[Any]) -> set[str]:
        recovered: set[str] = set()
        for at, users in asked.items():
            answer = results[at]
            if isinstance(answer, list):  # several users' errors read, then deleted
                recovered.update(user for user, error in zip(users, answer, strict=True) if error)
            elif answer:  # one user's error deleted
                recovered.add(users[0])
        return recovered

    def _stage_counts(self, pipe: Pipeline, pending: list[_Pending]) -> dict[str, StagedCount]:
        by_run: dict[str, list[_Pending]] = {}
        for item in pending:
            if item.run_id is not None:
                by_run.setdefault(item.run_id, []).append(item)
        counts = {}
        for run_id, items in by_run.items():
            counted = [
                Counted(i.decision.user, i.decision.action.value, i.entry if self.dry_run else None)
                for i in items
            ]
            counts[run_id] = self.runs.stage_count(pipe, self.tenant, run_id, counted)
            errors = {i.decision.user: i.error for i in items if i.error and not self.dry_run}
            if errors:
                self.runs.stage_error(pipe, self.tenant, run_id, errors)
                self.runs.stage_errors_expiry(pipe, self.tenant, run_id)
        return counts


async def record_decision(
    records: Records,
    runs: RunStore,
    tenant: str,
    decision: Decision,
    *,
    run_id: str | None,
    written: bool,
    error: str | None = None,
    dry_run: bool = False,
) -> bool:
    """Record one decision in the user's history, the tenant's errors and the run (a dry
    run's, in its plan only). True when the user's sync failed before and did not now."""
    batch = DecisionBatch(records, runs, tenant, dry_run=dry_run)
    batch.add(decision, run_id=run_id, written=written, error=error)
    return decision.user in await batch.flush()


@dataclass(frozen=True, slots=True)
class Summary:
    """What the syncs of one EmployeeSync left for its caller to do.

    `follow_ups`: users to sync again once their manager has a profile (user -> manager);
    `deferred`: suspensions waiting for the safety guard; `contract_ends`: future last days,
    to re-check on time.
    """

    follow_ups: Mapping[str, str]
    deferred: Mapping[str, Decision]
    contract_ends: Mapping[str, date]


def error_outcome(user_id: str, message: str) -> Outcome:
    """An error of this employee's alone: recorded against it, tried again later."""
    return Outcome(Decision(user_id, Action.ERROR, message), written=False, error=message)

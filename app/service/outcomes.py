"""Recording what the sync decided: the user's history, its error, and its run's count."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.decision import Decision
from app.metrics import DECISIONS
from app.store.records import Records
from app.store.run_model import utcnow_iso
from app.store.runs import RunStore


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one employee's sync decided, whether it wrote it, and the error it met."""

    decision: Decision
    written: bool
    error: str | None = None


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
    # A plan lives under its run only: it changes no employee's history, and is no evidence
    # of a failing user, nor of a fixed one.
    recovered = False
    if not dry_run:
        recovered = await records.add(tenant, decision.user, entry, failing=bool(error))
    if run_id is not None:
        plan_entry = entry if dry_run else None
        await runs.count(tenant, run_id, decision.user, decision.action.value, plan_entry)
        if error and not dry_run:
            await runs.note_error(tenant, run_id, decision.user, error)
    return recovered

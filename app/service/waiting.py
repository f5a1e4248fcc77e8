"""Changes that wait for a tenant-level reason (sync-rules.md, "nothing waits for ever and nothing
is dropped"): the employee is parked with the reason, its history and its run say why, and it is
queued again, by a run of its own, as soon as the reason clears (app/service/blocks.py says when).

The Lucca budget is no reason to park: a job that finds it spent defers itself and its user is
read by the next request (app/service/batcher.py); the status counts those users too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.service.context import CONTEXT_TTL_SECONDS
from app.service.jobs import enqueue_user_syncs
from app.service.resources import Resources
from app.store.parked import ParkedUsers, Pause, TenantPause
from app.store.run_model import RunMode, Trigger, TriggerKind, draft_run, utcnow_iso

log = logging.getLogger(__name__)


class Reason(StrEnum):
    """Why an employee's change waits; the codes are a stored format."""

    PAUSED = "paused"
    LUCCA_KEY = "lucca_key"
    ELEVO_TOKEN = "elevo_token"  # noqa: S105 (a reason's code, no secret)
    SKIP_FIELD = "skip_field"


_WHY = {
    Reason.PAUSED: "the tenant is paused; applied on resume",
    Reason.LUCCA_KEY: "Lucca refuses the tenant's API key; applied as soon as a key works",
    Reason.ELEVO_TOKEN: "Elevo refuses the tenant's token; applied as soon as a token works",
    Reason.SKIP_FIELD: (
        "last seen excluded, and the skip field is no longer shown; applied once a complete"
        " listing shows whether the API key still sees it"
    ),
}
_CODES = frozenset(reason.value for reason in Reason)
BUDGET = "budget"  # the status's name for the users whose jobs wait for the Lucca budget


def waiting_text(reason: Reason, detail: str | None = None) -> str:
    """The sentence a parked employee's history, its run and the status show."""
    return f"waiting: {_WHY[reason]}" + (f" ({detail})" if detail else "")


async def park(
    res: Resources, tenant: str, user_ids: Sequence[str], reason: Reason, *, run_id: str | None
) -> None:
    """Keep these employees until `reason` clears; their run says it waits."""
    await ParkedUsers(res.redis, tenant).park(user_ids, reason.value, utcnow_iso())
    if run_id is not None:
        await res.runs.note_waiting(tenant, run_id, waiting_text(reason))
    log.info("tenant=%s %s user(s) wait: %s", tenant, len(user_ids), reason.value)


@dataclass(frozen=True, slots=True)
class Released:
    """What a cleared reason let go: the run that applies them (None when nobody waited), and
    whether some could not be kept (the caller then runs a full reconciliation)."""

    run_id: str | None
    user_ids: Sequence[str]
    overflowed: bool


async def release(
    res: Resources,
    tenant: str,
    reason: Reason,
    *,
    trigger: Trigger,
    config_changed: bool = False,
) -> Released:
    """`reason` cleared: queue everyone who waited for it, in one run of mode `users`. After a
    change of the tenant's config, the jobs start once every process sees it."""
    taken = await ParkedUsers(res.redis, tenant).take(reason.value)
    run_id = await requeue(res, tenant, taken.user_ids, reason, trigger, config_changed)
    return Released(run_id, taken.user_ids, taken.overflowed)


async def requeue(
    res: Resources,
    tenant: str,
    ids: Sequence[str],
    reason: Reason,
    trigger: Trigger,
    config_changed: bool = False,
) -> str | None:
    """Queue again employees taken from the parked list, in a run of their own; its id."""
    if not ids:
        return None
    run = draft_run(
        mode=RunMode.USERS,
        trigger=trigger,
        expected=len(ids),
        reason=f"{len(ids)} employee(s) waited: {_WHY[reason]}",
    )
    await enqueue_user_syncs(
        res.redis,
        tenant,
        ids,
        run_id=run.id,
        defer_seconds=CONTEXT_TTL_SECONDS + 0.5 if config_changed else None,
        also=lambda pipe: res.runs.stage(pipe, tenant, run),
    )
    log.info("tenant=%s %s cleared: %s user(s) queued again", tenant, reason.value, len(ids))
    return run.id


UNBLOCKED = Trigger(TriggerKind.UNBLOCKED)


async def paused(res: Resources, tenant: str) -> Pause | None:
    return await TenantPause(res.redis, tenant).get()


async def waiting_document(res: Resources, tenant: str) -> dict[str, Any]:
    """GET /sync/{tenant}'s `paused` and `waiting`: what the tenant waits for, how many wait."""
    pause = await paused(res, tenant)
    counts = await ParkedUsers(res.redis, tenant).counts()
    notes = await res.records.flags(tenant, "lucca_key_error", "elevo_token_error")
    details = {Reason.LUCCA_KEY.value: notes[0], Reason.ELEVO_TOKEN.value: notes[1]}
    reasons = [
        {
            "reason": code,
            "users": users,
            "since": since,
            "detail": _WHY[Reason(code)] if code in _CODES else code,
            "error": details.get(code) or None,
        }
        for code, (users, since) in sorted(counts.items())
    ]
    budget = await res.batcher.wanted_count(tenant)
    if budget:
        reasons.append(
            {
                "reason": BUDGET,
                "users": budget,
                "since": None,
                "detail": "the Lucca request budget is spent for now; read as soon as it allows",
                "error": None,
            }
        )
    return {
        "paused": None
        if pause is None
        else {"since": pause.at, "by": pause.by, "reason": pause.reason},
        "waiting": {"users": sum(r["users"] for r in reasons), "reasons": reasons},
    }

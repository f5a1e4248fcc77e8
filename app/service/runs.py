"""Runs: starting one (its record first, then its first job), ending one, and the documents
GET /sync/{tenant} and its runs and users show."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from app.service import jobs
from app.service.resources import Resources
from app.service.skip_field import start_afresh
from app.store import queue
from app.store.runs import RunMode, RunState, Trigger, TriggerKind, draft_run
from app.store.tenants import purge_state

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What a run is asked to do: `users` goes with mode USERS, `confirm_suspensions` and
    `accept_skip_field_loss` with FULL."""

    mode: RunMode
    users: tuple[str, ...] = ()
    dry_run: bool = False
    confirm_suspensions: bool = False
    accept_skip_field_loss: bool = False

    @classmethod
    def of_users(cls, user_ids: list[str], *, dry_run: bool = False) -> RunRequest:
        return cls(RunMode.USERS, users=tuple(user_ids), dry_run=dry_run)

    @classmethod
    def of_mode(
        cls,
        mode: str,
        *,
        dry_run: bool = False,
        confirm_suspensions: bool = False,
        accept_skip_field_loss: bool = False,
    ) -> RunRequest:
        """A run of every user ("full") or of what changed ("changes")."""
        return cls(
            RunMode(mode),
            dry_run=dry_run,
            confirm_suspensions=confirm_suspensions,
            accept_skip_field_loss=accept_skip_field_loss,
        )


FULL_RUN = RunRequest(RunMode.FULL)
CHANGES_RUN = RunRequest(RunMode.CHANGES)


async def start_run(res: Resources, tenant: str, request: RunRequest, *, trigger: Trigger) -> str:
    """Create the run record and queue its first job; a full run already running is reused."""
    mode, dry_run = request.mode, request.dry_run
    if mode is RunMode.USERS:
        users = list(request.users)
        run_id = await res.runs.create(
            tenant, draft_run(mode=mode, trigger=trigger, dry_run=dry_run, expected=len(users))
        )
        if dry_run:
            await jobs.enqueue_plan_users(res.redis, tenant, run_id, users)
        else:
            await jobs.enqueue_user_syncs(res.redis, tenant, users, run_id=run_id)
        return run_id
    if mode is RunMode.CHANGES:
        run_id = await res.runs.create(
            tenant, draft_run(mode=mode, trigger=trigger, dry_run=dry_run)
        )
        await jobs.enqueue_poll(res.redis, tenant, run_id)
        return run_id
    new = draft_run(
        mode=mode,
        trigger=trigger,
        dry_run=dry_run,
        confirm_suspensions=request.confirm_suspensions,
    )
    run_id = await res.runs.create(tenant, new)
    if not dry_run:
        running_id = await res.full_run_lock.claim(tenant, run_id)
        if running_id is not None:
            await res.runs.set_state(tenant, run_id, RunState.DONE, merged_into=running_id)
            return running_id
    await jobs.enqueue_reconcile_step(res.redis, jobs.Job.RECONCILE_SNAPSHOT, tenant, run_id, 1)
    return run_id


async def request_run(res: Resources, tenant: str, request: RunRequest) -> str:
    """A run asked for through the API (POST /sync/{tenant}).

    Accepting the loss of the skip field (the customer removed the checkbox on purpose) lifts
    the flag and forgets who was last seen excluded; the full run that follows applies what
    the loss held.
    """
    if request.accept_skip_field_loss:
        await start_afresh(res, tenant)
    return await start_run(res, tenant, request, trigger=Trigger(TriggerKind.API))


async def fail_run(res: Resources, tenant: str, run_id: str, reason: str) -> str:
    """A run that cannot go on: failed, and the tenant free for the next one."""
    await res.runs.set_state(tenant, run_id, RunState.FAILED, error=reason)
    await res.full_run_lock.release(tenant)
    log.warning("tenant=%s run=%s failed: %s", tenant, run_id, reason)
    return "failed"


async def purge_tenant_state(res: Resources, tenant: str) -> int:
    """Remove every key of a deleted tenant's sync state; its queued jobs then do nothing."""
    return await purge_state(res.redis, tenant)


# -- what the GET routes show -----------------------------------------------------------------


async def status_document(res: Resources, tenant: str) -> dict[str, Any]:
    """GET /sync/{tenant}: the tenant's flags, failing users and recent runs."""
    notes = await res.records.notes(tenant)
    held_users = orjson.loads(notes["held_users"]) if notes.get("held_users") else []
    return {
        "tenant": tenant,
        "last_event_at": notes.get("last_event") or None,
        "last_full_run_at": notes.get("last_full_run") or None,
        "queue_depth": await queue.depth(res.redis),
        "safety_guard": {
            "holding": bool(notes.get("held_run")),
            "run": notes.get("held_run") or None,
            "users": held_users,
        },
        "permission_loss": notes.get("permission_loss") or None,
        "skip_field_warning": notes.get("skip_field_warning") or None,
        "lucca_key_error": notes.get("lucca_key_error") or None,
        "elevo_token_error": notes.get("elevo_token_error") or None,
        "last_poll_at": notes.get("last_poll") or None,
        "failing_users": await res.records.user_errors(tenant),
        "runs": await recent_run_documents(res, tenant),
    }


async def run_document(res: Resources, tenant: str, run_id: str) -> dict[str, Any] | None:
    """GET /sync/{tenant}/runs/{run_id}: the run with its counts, errors and plan."""
    report = await res.runs.report(tenant, run_id)
    return None if report is None else report.document()


async def recent_run_documents(
    res: Resources, tenant: str, limit: int = 10
) -> list[dict[str, Any]]:
    """The newest runs, without their plans."""
    return [report.document(with_plan=False) for report in await res.runs.recent(tenant, limit)]


async def history_document(res: Resources, tenant: str, user_id: str) -> dict[str, Any]:
    """GET /sync/{tenant}/users/{user_id}: what the sync decided for the user, newest first."""
    history = await res.records.history(tenant, user_id)
    return {"tenant": tenant, "user": user_id, "history": history}

"""Runs: starting one (its record first, then its first job), ending one, and the documents
GET /sync/{tenant} and its runs and users show."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from app.service import audit, held_runs, jobs, waiting
from app.service.errors import RunConflict
from app.service.resources import Resources
from app.service.skip_field import start_afresh
from app.store import lucca_endpoint, queue
from app.store.run_model import RunMode, RunState, Trigger, TriggerKind, draft_run
from app.store.tenants import TenantStoreError, purge_state

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What a run is asked to do: `users` goes with mode USERS; `confirms` (the held run whose
    list the operator approves), `confirm_unnamed` (a bare `true`, refused) and
    `accept_skip_field_loss` with FULL."""

    mode: RunMode
    users: tuple[str, ...] = ()
    dry_run: bool = False
    confirms: str | None = None
    confirm_unnamed: bool = False
    accept_skip_field_loss: bool = False

    @classmethod
    def of_users(cls, user_ids: Iterable[str], *, dry_run: bool = False) -> RunRequest:
        """A run of these users, each once (the run counts them to know when it is done)."""
        return cls(RunMode.USERS, users=tuple(dict.fromkeys(user_ids)), dry_run=dry_run)

    @classmethod
    def of_mode(
        cls,
        mode: str,
        *,
        dry_run: bool = False,
        confirms: str | None = None,
        confirm_unnamed: bool = False,
        accept_skip_field_loss: bool = False,
    ) -> RunRequest:
        """A run of every user ("full") or of what changed ("changes")."""
        return cls(
            RunMode(mode),
            dry_run=dry_run,
            confirms=confirms,
            confirm_unnamed=confirm_unnamed,
            accept_skip_field_loss=accept_skip_field_loss,
        )


@dataclass(frozen=True, slots=True)
class Dismissal:
    """An operator drops a held run: nobody on its list is suspended."""

    run_id: str


FULL_RUN = RunRequest(RunMode.FULL)
CHANGES_RUN = RunRequest(RunMode.CHANGES)


async def start_run(
    res: Resources, tenant: str, request: RunRequest, *, trigger: Trigger, operator: str = ""
) -> str:
    """Create the run record and queue its first job; a full run already running is reused,
    except by a confirmation (a 409: it never merges). `operator` names the token that asked
    (recorded on a confirmed held run)."""
    mode, dry_run = request.mode, request.dry_run
    release = await res.releases.get(tenant)
    if release is not None:
        raise RunConflict(f"the tenant is disconnecting: release run {release.run}")
    if mode is RunMode.USERS:
        users = list(dict.fromkeys(request.users))
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
    if request.confirm_unnamed:
        raise await held_runs.refuse_unnamed_confirmation(res, tenant)
    if request.confirms is not None:
        return await _start_confirmation(res, tenant, request, trigger, operator)
    new = draft_run(mode=mode, trigger=trigger, dry_run=dry_run)
    run_id = await res.runs.create(tenant, new)
    # A dry run never takes the lock: it neither joins a real run nor has one join it.
    if not dry_run:
        running_id = await _claim_tenant(res, tenant, run_id)
        if running_id is not None:
            await res.runs.set_state(tenant, run_id, RunState.DONE, merged_into=running_id)
            return running_id
    await jobs.enqueue_reconcile_step(res.redis, jobs.Job.RECONCILE_SNAPSHOT, tenant, run_id, 1)
    return run_id


async def _start_confirmation(
    res: Resources, tenant: str, request: RunRequest, trigger: Trigger, operator: str
) -> str:
    """A full run that may suspend the list of the held run it names, past the guard."""
    assert request.confirms is not None
    held = await held_runs.resolvable(res, tenant, request.confirms)
    new = draft_run(mode=RunMode.FULL, trigger=trigger, dry_run=request.dry_run, confirms=held.id)
    if request.dry_run:  # the plan of the confirmation; the held run stays as it is
        run_id = await res.runs.create(tenant, new)
        await jobs.enqueue_reconcile_step(res.redis, jobs.Job.RECONCILE_SNAPSHOT, tenant, run_id, 1)
        return run_id
    running_id = await _claim_tenant(res, tenant, new.id)
    if running_id is not None:
        raise RunConflict(
            f"full run {running_id} is running: it weighs the suspensions again; confirm"
            f" run {held.id} once it ends, if it is still held"
        )
    try:
        await held_runs.claim_confirmation(res, tenant, held.id, by_run=new.id, operator=operator)
        await res.runs.create(tenant, new)
        await jobs.enqueue_reconcile_step(res.redis, jobs.Job.RECONCILE_SNAPSHOT, tenant, new.id, 1)
    except BaseException:
        await res.full_run_lock.release(tenant, new.id)
        raise
    return new.id


async def _claim_tenant(res: Resources, tenant: str, run_id: str) -> str | None:
    """The full-run lock for `run_id`; None when taken, else the id of the run under way.

    A run's finish records its end a moment before it frees the tenant: a full run asked for
    in between (by a client that saw the end) must start, not join the run that ended."""
    running_id = await res.full_run_lock.claim(tenant, run_id)
    if running_id is None:
        return None
    running = await res.runs.get(tenant, running_id)
    if running is None or not running.state.final:
        return running_id
    await res.full_run_lock.release(tenant, running_id)  # only if that run still holds it
    return await res.full_run_lock.claim(tenant, run_id)


async def request_run(
    res: Resources, tenant: str, request: RunRequest | Dismissal, *, operator: str
) -> str:
    """What POST /sync/{tenant} asks, by the token named `operator`: a run started (or the
    full run it joined), or a held run dismissed; its id."""
    if isinstance(request, Dismissal):
        dismissed = await held_runs.dismiss(res, tenant, request.run_id, operator=operator)
        await audit.record(res, tenant, audit.AuditAction.DISMISS, by=operator, run=dismissed)
        return dismissed
    pause = await waiting.paused(res, tenant)
    if pause is not None and request.confirms is not None and not request.dry_run:
        # A confirmation approves suspensions now: it is never kept for later.
        raise RunConflict(
            f"tenant {tenant} is paused (by {pause.by} since {pause.at}): resume it, then confirm"
        )
    if request.accept_skip_field_loss:
        # The customer removed the checkbox on purpose: lift the flag and forget who was last
        # seen excluded; the full run that follows applies what the loss held.
        await start_afresh(res, tenant)
        await audit.record(res, tenant, audit.AuditAction.ACCEPT_SKIP_FIELD_LOSS, by=operator)
    run_id = await start_run(
        res, tenant, request, trigger=Trigger(TriggerKind.API), operator=operator
    )
    if request.confirms is not None and not request.dry_run:
        await audit.record(
            res, tenant, audit.AuditAction.CONFIRM, by=operator, run=request.confirms, by_run=run_id
        )
    return run_id


async def fail_run(res: Resources, tenant: str, run_id: str, reason: str) -> str:
    """A run that cannot go on: failed, and the tenant free for the next one."""
    await res.runs.set_state(tenant, run_id, RunState.FAILED, error=reason)
    await res.full_run_lock.release(tenant, run_id)
    log.warning("tenant=%s run=%s failed: %s", tenant, run_id, reason)
    return "failed"


async def purge_tenant_state(res: Resources, tenant: str) -> int:
    """Remove every key of a deleted tenant's sync state; its queued jobs then do nothing."""
    return await purge_state(res.redis, tenant)


# -- what the GET routes show -----------------------------------------------------------------


async def _elevo_paused(res: Resources, tenant: str) -> dict[str, Any] | None:
    seconds, why = await res.elevo_pause.remaining(tenant)
    if seconds <= 0:
        return None
    return {"why": "unanswered" if why == "unanswered" else "429", "seconds": round(seconds, 1)}


async def _config_error(res: Resources, tenant: str) -> str | None:
    """Why the stored config cannot be read, before the minute's tick has flagged it."""
    try:
        await res.tenants.get(tenant)
    except TenantStoreError as exc:  # its message names no secret
        return str(exc)
    return None


async def status_document(res: Resources, tenant: str) -> dict[str, Any]:
    """GET /sync/{tenant}: the tenant's flags, failing users and recent runs."""
    notes = await res.records.notes(tenant)
    held_users = orjson.loads(notes["held_users"]) if notes.get("held_users") else []
    endpoint = await lucca_endpoint.load(res.redis, tenant)
    return {
        "tenant": tenant,
        "last_event_at": notes.get("last_event") or None,
        "last_full_run_at": notes.get("last_full_run") or None,
        "queue_depth": await queue.tenant_depth(res.redis, tenant),
        "safety_guard": {
            "holding": bool(notes.get("held_run")),
            "run": notes.get("held_run") or None,
            "users": held_users,
        },
        "permission_loss": notes.get("permission_loss") or None,
        "skip_field_warning": notes.get("skip_field_warning") or None,
        "lucca_key_error": notes.get("lucca_key_error") or None,
        "elevo_token_error": notes.get("elevo_token_error") or None,
        "config_error": notes.get("config_error") or await _config_error(res, tenant),
        "last_poll_at": notes.get("last_poll") or None,
        "elevo_paused": await _elevo_paused(res, tenant),
        "lucca_unreadable": orjson.loads(unreadable)
        if (unreadable := notes.get("lucca_unreadable"))
        else None,
        **await waiting.waiting_document(res, tenant),
        "last_pause": orjson.loads(last_pause) if (last_pause := notes.get("last_pause")) else None,
        "lucca_webhook": None if endpoint is None else endpoint.document(),
        "failing_users": await res.records.user_errors(tenant),
        "duplicate_profiles": await res.records.duplicates(tenant),
        "runs": await recent_run_documents(res, tenant),
        "disconnect": await _disconnect_document(res, tenant),
    }


async def _disconnect_document(res: Resources, tenant: str) -> dict[str, Any] | None:
    mark = await res.releases.get(tenant)
    if mark is None:
        return None
    return {"state": mark.state.value, "run": mark.run, "error": mark.error}


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

"""What the console's pages show, read from the status notes, runs and histories the sync
keeps; nothing here calls Lucca or Elevo."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from app.core.lucca_user import LuccaUser
from app.core.rules import standing_of
from app.service.access import Action, Principal
from app.service.console_runs import seconds_between
from app.service.release import release_status
from app.service.resources import Resources
from app.service.waiting import Reason, waiting_document
from app.store import queue, run_rows
from app.store.read_cache import LuccaReadCache
from app.store.run_model import Run, RunState, TriggerKind


@dataclass(frozen=True, slots=True)
class Trouble:
    """Something that needs an operator: a short label for the overview, the service's own
    words for the tenant page."""

    label: str
    detail: str = ""
    held: bool = False  # a held run: its own banner, with its review link
    own_banner: bool = False  # a pause or a disconnection: the tenant page says more


@dataclass(frozen=True, slots=True)
class TenantHealth:
    """One tenant's line on the overview; `troubles` says what needs an operator."""

    tenant: str
    last_full_run_at: str | None
    last_run: Run | None
    last_event_at: str | None
    failing: int
    held_run: str | None
    held_count: int
    lucca_key_error: str | None
    elevo_token_error: str | None
    permission_warning: str | None
    webhook_lag_seconds: float | None = None  # median, over the latest webhook-driven syncs
    paused: Mapping[str, Any] | None = None  # by, since, reason (the status's `paused`)
    waiting: tuple[Mapping[str, Any], ...] = ()  # the status's `waiting.reasons`
    disconnect: Mapping[str, Any] | None = None  # state (disconnecting, failed), run, error
    troubles: tuple[Trouble, ...] = ()

    @property
    def kept_while_paused(self) -> int:
        """How many employees' changes the pause keeps, applied on resume."""
        return _waiting_users(self, Reason.PAUSED)


async def tenant_health(res: Resources, tenant: str) -> TenantHealth:
    notes = await res.records.notes(tenant)
    ids = await run_rows.run_ids(res.redis, tenant, 1)
    last_run = await res.runs.get(tenant, ids[0]) if ids else None
    held_users = orjson.loads(notes["held_users"]) if notes.get("held_users") else []
    warning = notes.get("permission_loss") or notes.get("skip_field_warning") or None
    blocked = await waiting_document(res, tenant)
    release = await release_status(res, tenant)
    health = TenantHealth(
        tenant=tenant,
        last_full_run_at=notes.get("last_full_run") or None,
        last_run=last_run,
        last_event_at=notes.get("last_event") or None,
        failing=await run_rows.failing_count(res.redis, tenant),
        held_run=notes.get("held_run") or None,
        held_count=len(held_users),
        lucca_key_error=notes.get("lucca_key_error") or None,
        elevo_token_error=notes.get("elevo_token_error") or None,
        permission_warning=warning,
        webhook_lag_seconds=await _webhook_lag(res, tenant),
        paused=blocked["paused"],
        waiting=tuple(blocked["waiting"]["reasons"]),
        disconnect=None
        if release is None
        else {"state": release.state.value, "run": release.run, "error": release.error},
    )
    return replace(health, troubles=_troubles(health))


# The lag shown is the median of this many of the newest runs' webhook-driven syncs.
LAG_SAMPLE = 20


async def _webhook_lag(res: Resources, tenant: str) -> float | None:
    """Median seconds from a webhook's arrival (its run's creation) to the end of its sync
    (the run's end), over the newest webhook-driven runs."""
    lags = [
        seconds_between(created, finished)
        for trigger, created, finished in await run_rows.recent_times(res.redis, tenant, LAG_SAMPLE)
        if trigger.startswith(TriggerKind.WEBHOOK.value) and created and finished
    ]
    return statistics.median(lags) if lags else None


def _troubles(health: TenantHealth) -> tuple[Trouble, ...]:
    troubles = _blocked(health)
    if health.held_run:
        troubles.append(Trouble(f"Held run: {health.held_count} to review", held=True))
    if health.lucca_key_error:
        label = "Lucca refused the API key" + _kept(health, Reason.LUCCA_KEY)
        troubles.append(Trouble(label, health.lucca_key_error))
    if health.elevo_token_error:
        label = "Elevo refused the token" + _kept(health, Reason.ELEVO_TOKEN)
        troubles.append(Trouble(label, health.elevo_token_error))
    if health.permission_warning:
        troubles.append(Trouble("Permission warning", health.permission_warning))
    if health.failing:
        troubles.append(Trouble(f"{health.failing} failing employees"))
    if health.last_run is not None and health.last_run.state is RunState.FAILED:
        troubles.append(Trouble("Last run failed"))
    return tuple(troubles)


def _waiting_users(health: TenantHealth, reason: Reason) -> int:
    return sum(r["users"] for r in health.waiting if r["reason"] == reason.value)


def _kept(health: TenantHealth, reason: Reason) -> str:
    waiting = _waiting_users(health, reason)
    return f" · {waiting} changes waiting" if waiting else ""


def _blocked(health: TenantHealth) -> list[Trouble]:
    """What stops the tenant's writes: a disconnection, a pause, and the changes that wait
    for a skip field no longer shown (the Lucca budget is no trouble: it refills by itself;
    the changes a refused key or token keeps are counted on its own trouble)."""
    troubles = []
    if health.disconnect is not None:
        state, run = health.disconnect["state"], health.disconnect["run"]
        detail = health.disconnect.get("error") or f"release run {run}"
        troubles.append(Trouble(f"Disconnect: {state}", detail, own_banner=True))
    if health.paused is not None:
        label = f"Paused · {health.kept_while_paused} changes kept"
        troubles.append(Trouble(label, own_banner=True))
    for reason in health.waiting:
        if reason["reason"] == Reason.SKIP_FIELD.value:
            since = str(reason["since"] or "")[:16].replace("T", " ")
            detail = reason["detail"] + (f" (since {since} UTC)" if since else "")
            troubles.append(Trouble(f"{reason['users']} changes waiting", detail))
    return troubles


@dataclass(frozen=True, slots=True)
class Overview:
    tenants: list[TenantHealth]
    queue_depth: int


async def overview(res: Resources, principal: Principal) -> Overview:
    """Every tenant the principal may read, those in trouble first."""
    names = sorted(await res.tenants.list())
    visible = [t for t in names if principal.allows(Action.READ_STATUS, t)]
    healths = [await tenant_health(res, tenant) for tenant in visible]
    healths.sort(key=lambda h: (not h.troubles, h.tenant))
    return Overview(healths, await queue.depth(res.redis))


# -- held runs and employees ----------------------------------------------------------------


# The decisions only taken for someone Lucca listed as active: the newest one's time is when
# the person was last seen in Lucca (as far as their history, 200 entries, remembers).
SEEN_IN_LUCCA = frozenset({"create", "update", "adopt", "unchanged", "reactivate"})


@dataclass(frozen=True, slots=True)
class HeldReview:
    run: Run
    fields: Mapping[str, str]
    people: list[dict[str, Any]]  # user, reason, at (their last decision), seen_at


async def held_review(res: Resources, tenant: str, run_id: str) -> HeldReview | None:
    """A held run with the people it would suspend: name and email from the run's Elevo
    snapshot, reason and time of their last decision."""
    report = await res.runs.report(tenant, run_id)
    if report is None:
        return None
    users = await res.runs.held_users(tenant, run_id)
    latest = await run_rows.latest_entries(res.redis, tenant, users)
    seen = await run_rows.latest_entries_of(res.redis, tenant, users, SEEN_IN_LUCCA)
    profiles = await run_rows.snapshot_profiles(res.redis, tenant, run_id, users)
    people = [
        {
            "user": user,
            **_identity(profiles.get(user)),
            "reason": latest.get(user, {}).get("reason", ""),
            "at": latest.get(user, {}).get("at", ""),
            "seen_at": seen.get(user, {}).get("at", ""),
        }
        for user in users
    ]
    return HeldReview(report.run, report.fields, people)


def _identity(profile: Mapping[str, Any] | None) -> dict[str, str]:
    if profile is None:
        return {"name": "", "email": ""}
    attributes = profile.get("attributes") or {}
    name = " ".join(
        str(part)
        for part in (attributes.get("name.givenName"), attributes.get("name.familyName"))
        if part
    )
    emails = [e.get("value") for e in profile.get("emails") or [] if e.get("value")]
    return {"name": name, "email": str(emails[0]) if emails else str(profile.get("user_name", ""))}


@dataclass(frozen=True, slots=True)
class EmployeeView:
    user: str
    history: list[dict[str, Any]] = field(default_factory=list)
    failing: dict[str, Any] | None = None


async def employee_view(res: Resources, tenant: str, user_id: str) -> EmployeeView:
    history = await res.records.history(tenant, user_id)
    failing = (await res.records.user_errors(tenant)).get(user_id)
    return EmployeeView(user_id, history, failing)


@dataclass(frozen=True, slots=True)
class SyncTrace:
    """What "Sync now" did for one employee: its run; what Lucca said (its read is shared for
    a minute, so the trace shows the very read the sync used) and the standing that follows;
    the decision it recorded with its diff, whether it was written and Elevo's answer."""

    run: Run
    entry: dict[str, Any] | None
    lucca: LuccaUser | None = None
    lucca_problem: str | None = None  # Lucca's item was unusable
    standing: str | None = None

    @property
    def finished(self) -> bool:
        return self.run.state.final or self.entry is not None


async def sync_trace(res: Resources, tenant: str, run_id: str, user_id: str) -> SyncTrace | None:
    run = await res.runs.get(tenant, run_id)
    if run is None:
        return None
    entries = await run_rows.entries_of_run(res.redis, tenant, run_id, [user_id])
    entry = entries.get(user_id)
    batch = await LuccaReadCache(res.redis).get(tenant, user_id) if entry else None
    tenant_ctx = await res.contexts.get(tenant)
    if batch is None or tenant_ctx is None:
        return SyncTrace(run, entry)
    user = batch.users.get(user_id)
    standing = standing_of(user, skip_field=tenant_ctx.config.skip_field, today=tenant_ctx.today())
    return SyncTrace(run, entry, user, batch.invalid.get(user_id), standing.value)

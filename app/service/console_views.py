"""What the console's pages show, read from the status notes, runs and histories the sync
keeps; nothing here calls Lucca or Elevo."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.service.access import Action, Principal
from app.service.resources import Resources
from app.store import queue, run_rows
from app.store.runs import Run, RunReport, RunState

PAGE_SIZE = 100
# The tenant page's insights table reads this many of the newest runs.
RECENT_RUNS = 200


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
    troubles: tuple[str, ...] = ()


async def tenant_health(res: Resources, tenant: str) -> TenantHealth:
    notes = await res.records.notes(tenant)
    ids = await run_rows.run_ids(res.redis, tenant, 1)
    last_run = await res.runs.get(tenant, ids[0]) if ids else None
    held_users = orjson.loads(notes["held_users"]) if notes.get("held_users") else []
    warning = notes.get("permission_loss") or notes.get("skip_field_warning") or None
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
    )
    return TenantHealth(**{**_fields(health), "troubles": _troubles(health)})


def _fields(health: TenantHealth) -> dict[str, Any]:
    return {name: getattr(health, name) for name in TenantHealth.__slots__}


def _troubles(health: TenantHealth) -> tuple[str, ...]:
    troubles = []
    if health.held_run:
        troubles.append(f"held run: {health.held_count} suspensions wait for review")
    if health.lucca_key_error:
        troubles.append("Lucca refused the API key")
    if health.elevo_token_error:
        troubles.append("Elevo refused the token")
    if health.permission_warning:
        troubles.append("permission warning")
    if health.failing:
        troubles.append(f"{health.failing} failing employees")
    if health.last_run is not None and health.last_run.state is RunState.FAILED:
        troubles.append("last run failed")
    return tuple(troubles)


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


# -- the tenant page's insights table -----------------------------------------------------


@dataclass(slots=True)
class RunLine:
    """A run, or the webhook-driven syncs of one hour added together."""

    label: str  # the run's creation time, or the hour
    trigger: str
    mode: str
    state: str
    counts: dict[str, int]
    duration: str
    run_id: str | None = None  # None for a group of webhook syncs
    dry_run: bool = False
    runs: int = 1
    resolution: str | None = None


def _duration(fields: Mapping[str, str]) -> str:
    from datetime import datetime

    start, end = fields.get("started_at") or fields.get("created_at"), fields.get("finished_at")
    if not start or not end:
        return ""
    seconds = (
        datetime.fromisoformat(end.replace("Z", "+00:00"))
        - datetime.fromisoformat(start.replace("Z", "+00:00"))
    ).total_seconds()
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _line(report: RunReport) -> RunLine:
    run = report.run
    return RunLine(
        label=run.created_at[:19].replace("T", " "),
        trigger=str(run.trigger),
        mode=run.mode.value,
        state=run.state.value,
        counts=dict(report.counts),
        duration=_duration(report.fields),
        run_id=run.id,
        dry_run=run.dry_run,
        resolution=run.resolution.value if run.resolution else None,
    )


async def run_lines(res: Resources, tenant: str) -> list[RunLine]:
    """The newest runs, one line each, except webhook syncs: one line per hour."""
    lines: list[RunLine] = []
    hours: dict[str, RunLine] = {}
    for report in await res.runs.recent(tenant, RECENT_RUNS):
        if not report.run.trigger.from_webhook:
            lines.append(_line(report))
            continue
        hour = report.run.created_at[:13].replace("T", " ") + ":00"
        group = hours.get(hour)
        if group is None:
            group = RunLine(hour, "webhook", "users", "", {}, "", runs=0)
            hours[hour] = group
            lines.append(group)
        group.runs += 1
        for action, count in report.counts.items():
            group.counts[action] = group.counts.get(action, 0) + count
    for group in hours.values():
        group.state = f"{group.runs} syncs"
    return lines


# -- a run's rows ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRows:
    run: Run
    fields: Mapping[str, str]
    counts: dict[str, int]
    rows: list[dict[str, Any]]  # this page's rows: user, action, reason, diff, error
    total: int  # rows matching the filters
    page: int
    pages: int


def _matches(user_id: str, entry: Mapping[str, Any], search: str) -> bool:
    if not search:
        return True
    haystack = user_id + " " + orjson.dumps(entry.get("diff") or {}).decode()
    return search.casefold() in (haystack + " " + str(entry.get("reason", ""))).casefold()


async def run_rows_page(
    res: Resources,
    tenant: str,
    run_id: str,
    *,
    action: str = "",
    search: str = "",
    page: int = 1,
    page_size: int | None = PAGE_SIZE,
) -> RunRows | None:
    """A run's rows filtered by action and a search, a page at a time (every row when
    `page_size` is None: the downloads)."""
    report = await res.runs.report(tenant, run_id)
    if report is None:
        return None
    rows = await _all_rows(res, tenant, report, with_entries=bool(search))
    chosen = [r for r in rows if (not action or r["action"] == action)]
    chosen = [r for r in chosen if _matches(r["user"], r, search)]
    size = page_size or max(1, len(chosen))
    pages = max(1, -(-len(chosen) // size))
    page = min(max(1, page), pages)
    shown = chosen[(page - 1) * size : page * size]
    if not report.run.dry_run and not search:
        entries = await run_rows.entries_of_run(
            res.redis, tenant, run_id, [r["user"] for r in shown]
        )
        shown = [r | _entry_fields(entries.get(r["user"])) for r in shown]
    return RunRows(report.run, report.fields, dict(report.counts), shown, len(chosen), page, pages)


def _entry_fields(entry: Mapping[str, Any] | None) -> dict[str, Any]:
    if entry is None:
        return {}
    return {"reason": entry.get("reason", ""), "diff": entry.get("diff") or {}}


async def _all_rows(
    res: Resources, tenant: str, report: RunReport, *, with_entries: bool
) -> list[dict[str, Any]]:
    run_id = report.run.id
    errors = report.errors
    if report.run.dry_run:
        plan = await run_rows.plan(res.redis, tenant, run_id)
        rows = [
            {
                "user": user,
                "action": e.get("action", ""),
                "reason": e.get("reason", ""),
                "diff": e.get("diff") or {},
                "error": errors.get(user, ""),
            }
            for user, e in plan.items()
        ]
    else:
        outcomes = await run_rows.outcomes(res.redis, tenant, run_id)
        rows = [
            {
                "user": user,
                "action": action,
                "reason": "",
                "diff": {},
                "error": errors.get(user, ""),
            }
            for user, action in outcomes.items()
        ]
        if with_entries:
            entries = await run_rows.entries_of_run(res.redis, tenant, run_id, list(outcomes))
            rows = [r | _entry_fields(entries.get(r["user"])) for r in rows]
    rows.sort(key=lambda r: (int(r["user"]) if r["user"].isdigit() else 0, r["user"]))
    return rows


# -- held runs and employees ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeldReview:
    run: Run
    fields: Mapping[str, str]
    people: list[dict[str, Any]]  # user, reason, at (their last decision)


async def held_review(res: Resources, tenant: str, run_id: str) -> HeldReview | None:
    """A held run with the people it would suspend: name and email from the run's Elevo
    snapshot, reason and time of their last decision."""
    report = await res.runs.report(tenant, run_id)
    if report is None:
        return None
    users = await res.runs.held_users(tenant, run_id)
    latest = await run_rows.latest_entries(res.redis, tenant, users)
    profiles = await run_rows.snapshot_profiles(res.redis, tenant, run_id, users)
    people = [
        {
            "user": user,
            **_identity(profiles.get(user)),
            "reason": latest.get(user, {}).get("reason", ""),
            "at": latest.get(user, {}).get("at", ""),
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
    """What "Sync now" did for one employee: its run, and the decision it recorded (what
    Lucca said, the standing and the diff, whether it was written and Elevo's answer)."""

    run: Run
    entry: dict[str, Any] | None

    @property
    def finished(self) -> bool:
        return self.run.state.final or self.entry is not None


async def sync_trace(res: Resources, tenant: str, run_id: str, user_id: str) -> SyncTrace | None:
    run = await res.runs.get(tenant, run_id)
    if run is None:
        return None
    entries = await run_rows.entries_of_run(res.redis, tenant, run_id, [user_id])
    return SyncTrace(run, entries.get(user_id))

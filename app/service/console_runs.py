"""The console's views of runs: the tenant's insights table and a run's rows, read in a few
round trips whatever the run's size (counts are made in Redis, history entries are fetched
for the page shown, or for the rows that did something)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from app.service.resources import Resources
from app.store import run_rows, webhook_hours
from app.store.run_model import Run

PAGE_SIZE = 100
# The tenant page's insights table shows a week of runs at a time, at most this many.
WEEK_SECONDS = 7 * 24 * 3600
MAX_RUNS_A_WEEK = 2000
# Outcomes whose history entry says nothing a search could look for.
QUIET = frozenset({"unchanged", "superseded", "skipped"})


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


def _instant(text: str) -> datetime:
    """A time a run record holds (run_model.utcnow_iso: ISO 8601, `Z` for UTC)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def seconds_between(start: str, end: str) -> float:
    return (_instant(end) - _instant(start)).total_seconds()


def _duration(fields: Mapping[str, str]) -> str:
    start, end = fields.get("started_at") or fields.get("created_at"), fields.get("finished_at")
    if not start or not end:
        return ""
    seconds = seconds_between(start, end)
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _line(run: Run, fields: Mapping[str, str], counts: dict[str, int]) -> RunLine:
    return RunLine(
        label=run.created_at[:19].replace("T", " "),
        trigger=str(run.trigger),
        mode=run.mode.value,
        state=run.state.value,
        counts=counts,
        duration=_duration(fields),
        run_id=run.id,
        dry_run=run.dry_run,
        resolution=run.resolution.value if run.resolution else None,
    )


async def run_lines(res: Resources, tenant: str, weeks_ago: int = 0) -> list[RunLine]:
    """The runs of one week (the last seven days, or as many weeks before), newest first,
    one line each, except webhook syncs: one line per hour, from the hour's aggregate (their
    records are kept a shorter time: app/store/webhook_hours.py)."""
    end = res.clock().timestamp() + 60 - weeks_ago * WEEK_SECONDS
    start = end - WEEK_SECONDS
    run_ids = await run_rows.run_ids_between(res.redis, tenant, start, end, MAX_RUNS_A_WEEK)
    dated: list[tuple[str, RunLine]] = []
    hours = {h.start: h for h in await webhook_hours.hours_between(res.redis, tenant, start, end)}
    for fields, counts in await run_rows.headers_and_counts(res.redis, tenant, run_ids):
        if not fields:
            continue  # expired
        run = Run.from_fields(fields)
        if run.trigger.from_webhook:
            # Indexed here, it was created before webhooks had an index and an aggregate of
            # their own (which leaves it out: run_counts.py): its hour adds it from its record.
            _add_to_hour(hours, run, counts)
        else:
            dated.append((run.created_at, _line(run, fields, counts)))
    for hour in hours.values():
        # Above the hour's other runs, as its last sync may come after them.
        dated.append((hour.start.strftime("%Y-%m-%dT%H:59:59.999Z"), _hour_line(hour)))
    dated.sort(key=lambda pair: pair[0], reverse=True)
    return [line for _, line in dated]


def _add_to_hour(
    hours: dict[datetime, webhook_hours.Hour], run: Run, counts: dict[str, int]
) -> None:
    start = _instant(run.created_at).replace(minute=0, second=0, microsecond=0)
    hour = hours.setdefault(start, webhook_hours.Hour(start))
    hour.runs += 1
    for action, count in counts.items():
        hour.counts[action] = hour.counts.get(action, 0) + count


def _hour_line(hour: webhook_hours.Hour) -> RunLine:
    state = f"{hour.runs} sync" + ("s" if hour.runs != 1 else "")
    label = hour.start.strftime("%Y-%m-%d %H:00")
    return RunLine(label, "webhooks (this hour)", "users", state, hour.counts, "", runs=hour.runs)


@dataclass(frozen=True, slots=True)
class RunRows:
    run: Run
    fields: Mapping[str, str]
    counts: dict[str, int]
    rows: list[dict[str, Any]]  # this page's rows: user, action, reason, diff, error
    total: int  # rows matching the filters
    page: int
    pages: int


def _matches(
    user: str, action: str, entry: Mapping[str, Any] | None, error: str, needle: str
) -> bool:
    """Whether the row shows `needle` (casefolded) in its id, action, reason, error or diff."""
    text = f"{user} {action} {error}"
    if entry is not None:
        text += f" {entry.get('reason', '')} {orjson.dumps(entry.get('diff') or {}).decode()}"
    return needle in text.casefold()


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
    `page_size` is None: the downloads). Rows are ordered and filtered on the outcomes
    alone; reasons and diffs are read for the rows shown, or for every row that did
    something when a search or a download needs them."""
    [(fields, counts)] = await run_rows.headers_and_counts(res.redis, tenant, [run_id])
    if not fields:
        return None
    run = Run.from_fields(fields)
    outcomes = await run_rows.outcomes(res.redis, tenant, run_id)
    errors = await run_rows.errors(res.redis, tenant, run_id)
    users = [u for u, a in outcomes.items() if a == action] if action else list(outcomes)
    users.sort(key=lambda u: (len(u), u))  # numeric order of canonical Lucca ids
    every_row = bool(search) or page_size is None
    details: dict[str, dict[str, Any]] = {}
    if every_row:
        details = await _details(res, tenant, run, [u for u in users if outcomes[u] not in QUIET])
    if search:
        needle = search.casefold()
        users = [
            u for u in users
            if _matches(u, outcomes[u], details.get(u), errors.get(u, ""), needle)
        ]  # fmt: skip
    size = page_size or max(1, len(users))
    pages = max(1, -(-len(users) // size))
    page = min(max(1, page), pages)
    shown = users[(page - 1) * size : page * size]
    if not every_row:
        details = await _details(res, tenant, run, shown)
    rows = [_row(u, outcomes[u], details.get(u), errors.get(u, "")) for u in shown]
    return RunRows(run, fields, counts, rows, len(users), page, pages)


def _row(user: str, action: str, entry: Mapping[str, Any] | None, error: str) -> dict[str, Any]:
    entry = entry or {}
    return {"user": user, "action": action, "reason": entry.get("reason", ""),
            "diff": entry.get("diff") or {}, "error": error}  # fmt: skip


async def _details(
    res: Resources, tenant: str, run: Run, users: list[str]
) -> dict[str, dict[str, Any]]:
    """Reason and diff of these users' rows: a dry run's plan entries, or the history
    entries a real run left."""
    if run.dry_run:
        return await run_rows.plan_entries(res.redis, tenant, run.id, users)
    return await run_rows.entries_of_run(res.redis, tenant, run.id, users)

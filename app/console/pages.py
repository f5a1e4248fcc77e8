"""The console's pages: overview, tenant, run (with its downloads), held run review and
employee. They read what the sync recorded; none calls Lucca or Elevo."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
from starlette.responses import Response
from starlette.routing import Route

from app.console.web import Page, guarded, not_found, redirect
from app.core.lucca_user import user_id_of
from app.schemas.common import RUN_ID_RE
from app.service import console_runs, console_views
from app.service.access import Action
from app.store.run_model import RunState

ACTIONS = (
    "create", "update", "adopt", "suspend", "reactivate", "release", "unchanged",
    "skipped", "conflict", "held", "error", "superseded",
)  # fmt: skip


def _page_number(page: Page) -> int:
    raw = page.request.query_params.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < len(raw) < 7 else 1


@guarded(Action.READ_STATUS)
async def overview(page: Page) -> Response:
    data = await console_views.overview(page.res, page.session.principal)
    template = "_overview_table.html" if page.request.query_params.get("part") else "overview.html"
    return page.render(template, overview=data)


@guarded(Action.READ_STATUS)
async def tenant_page(page: Page) -> Response:
    assert page.tenant is not None
    health = await console_views.tenant_health(page.res, page.tenant)
    raw_week = page.request.query_params.get("week", "0")
    week = int(raw_week) if raw_week.isdigit() and len(raw_week) < 3 else 0
    lines = await console_runs.run_lines(page.res, page.tenant, week)
    running = any(line.state in {RunState.QUEUED, RunState.RUNNING} for line in lines)
    template = "_tenant_body.html" if page.request.query_params.get("part") else "tenant.html"
    return page.render(template, health=health, lines=lines, running=running, week=week)


def _run_id(page: Page) -> str | None:
    run_id: str = page.request.path_params["run_id"]
    return run_id if RUN_ID_RE.fullmatch(run_id) else None


@guarded(Action.READ_RUNS)
async def run_page(page: Page) -> Response:
    assert page.tenant is not None
    run_id, query = _run_id(page), page.request.query_params
    action, search = query.get("action", ""), query.get("q", "").strip()[:200]
    download = query.get("format", "")
    rows = None
    if run_id is not None:
        rows = await console_runs.run_rows_page(
            page.res,
            page.tenant,
            run_id,
            action=action if action in ACTIONS else "",
            search=search,
            page=_page_number(page),
            page_size=None if download else console_runs.PAGE_SIZE,
        )
    if rows is None:
        return not_found(page.request)
    if download in {"csv", "json"}:
        return _download(page.tenant, rows, download)
    running = rows.run.state in {RunState.QUEUED, RunState.RUNNING}
    template = "_run_body.html" if query.get("part") else "run.html"
    return page.render(
        template, rows=rows, action=action, search=search, actions=ACTIONS, running=running
    )


def _download(tenant: str, rows: console_runs.RunRows, kind: str) -> Response:
    name = f"{tenant}-{rows.run.id}.{kind}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if kind == "json":
        body = orjson.dumps({"run": rows.run.id, "counts": rows.counts, "rows": rows.rows})
        return Response(body, media_type="application/json", headers=headers)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["user", "action", "reason", "field", "old", "new", "error"])
    for row in rows.rows:
        head = [row["user"], row["action"], _cell(row.get("reason", ""))]
        error = _cell(row.get("error", ""))
        diff: dict[str, dict[str, Any]] = row.get("diff") or {}
        for path, change in diff.items():
            writer.writerow(
                [*head, path, _cell(change.get("old")), _cell(change.get("new")), error]
            )
        if not diff:
            writer.writerow([*head, "", "", "", error])
    return Response(out.getvalue(), media_type="text/csv", headers=headers)


def _cell(value: object) -> str:
    """A CSV cell: no formula a spreadsheet would run."""
    text = (
        "" if value is None else value if isinstance(value, str) else orjson.dumps(value).decode()
    )
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


@guarded(Action.READ_STATUS)
async def held_page(page: Page) -> Response:
    assert page.tenant is not None
    run_id = _run_id(page)
    review = await console_views.held_review(page.res, page.tenant, run_id) if run_id else None
    if review is None or review.run.state is not RunState.HELD:
        return not_found(page.request)
    return page.render("held.html", review=review)


@guarded(Action.READ_STATUS)
async def employee_page(page: Page) -> Response:
    assert page.tenant is not None
    user_id = user_id_of({"id": page.request.path_params["user_id"]})
    if user_id is None:
        return not_found(page.request)
    view = await console_views.employee_view(page.res, page.tenant, user_id)
    trace = None
    sync_run = page.request.query_params.get("run", "")
    if RUN_ID_RE.fullmatch(sync_run):
        trace = await console_views.sync_trace(page.res, page.tenant, sync_run, user_id)
    template = "_employee_body.html" if page.request.query_params.get("part") else "employee.html"
    return page.render(template, view=view, trace=trace)


@guarded(Action.READ_STATUS)
async def find_employee(page: Page) -> Response:
    user_id = user_id_of({"id": page.request.query_params.get("id", "").strip()})
    if user_id is None:
        return redirect(f"/console/t/{page.tenant}", page.request)
    return redirect(f"/console/t/{page.tenant}/employees/{user_id}", page.request)


routes = [
    Route("/", overview, methods=["GET"]),
    Route("/t/{tenant}", tenant_page, methods=["GET"]),
    Route("/t/{tenant}/runs/{run_id}", run_page, methods=["GET"]),
    Route("/t/{tenant}/held/{run_id}", held_page, methods=["GET"]),
    Route("/t/{tenant}/employee", find_employee, methods=["GET"]),
    Route("/t/{tenant}/employees/{user_id}", employee_page, methods=["GET"]),
]

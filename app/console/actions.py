"""What the console's buttons do, through the same use cases as the API: start a run,
confirm or dismiss a held run, sync one employee now."""

from __future__ import annotations

import logging

from starlette.responses import Response
from starlette.routing import Route

from app.console.web import PREFIX, Page, field, guarded, not_found, redirect
from app.core.lucca_user import user_id_of
from app.schemas.common import RUN_ID_RE
from app.service.access import Action
from app.service.errors import BadTrigger, RunConflict, UnknownRun
from app.service.runs import Dismissal, RunRequest, request_run

log = logging.getLogger(__name__)

RUN_KINDS = {
    "full": RunRequest.of_mode("full"),
    "changes": RunRequest.of_mode("changes"),
    "dry": RunRequest.of_mode("full", dry_run=True),
}


async def _refused(page: Page, message: str) -> Response:
    return page.render("error.html", 409, title="Not done", message=message)


@guarded(Action.START_RUN)
async def start_run(page: Page) -> Response:
    assert page.tenant is not None
    request = RUN_KINDS.get(field(page, "kind"))
    if request is None:
        return await _refused(page, "Unknown kind of run.")
    operator = page.session.principal.name
    try:
        run_id = await request_run(page.res, page.tenant, request, operator=operator)
    except (BadTrigger, RunConflict, UnknownRun) as exc:
        return await _refused(page, str(exc))
    log.info("console: %s started run %s of %s", operator, run_id, page.tenant)
    return redirect(f"{PREFIX}/t/{page.tenant}/runs/{run_id}", page.request)


@guarded(Action.RESOLVE_HELD)
async def resolve_held(page: Page) -> Response:
    assert page.tenant is not None
    held_id = page.request.path_params["run_id"]
    decision = field(page, "decision")
    if not RUN_ID_RE.fullmatch(held_id) or decision not in {"confirm", "dismiss"}:
        return not_found(page.request)
    asked: RunRequest | Dismissal = (
        RunRequest.of_mode("full", confirms=held_id)
        if decision == "confirm"
        else Dismissal(held_id)
    )
    operator = page.session.principal.name
    try:
        run_id = await request_run(page.res, page.tenant, asked, operator=operator)
    except (BadTrigger, RunConflict, UnknownRun) as exc:
        return await _refused(page, str(exc))
    log.info("console: %s %sed held run %s of %s", operator, decision, held_id, page.tenant)
    if decision == "dismiss":
        return redirect(f"{PREFIX}/t/{page.tenant}", page.request)
    return redirect(f"{PREFIX}/t/{page.tenant}/runs/{run_id}", page.request)


@guarded(Action.START_RUN)
async def sync_now(page: Page) -> Response:
    assert page.tenant is not None
    user_id = user_id_of({"id": page.request.path_params["user_id"]})
    if user_id is None:
        return not_found(page.request)
    run_id = await request_run(
        page.res, page.tenant, RunRequest.of_users([user_id]), operator=page.session.principal.name
    )
    return redirect(f"{PREFIX}/t/{page.tenant}/employees/{user_id}?run={run_id}", page.request)


routes = [
    Route("/t/{tenant}/runs", start_run, methods=["POST"]),
    Route("/t/{tenant}/held/{run_id}", resolve_held, methods=["POST"]),
    Route("/t/{tenant}/employees/{user_id}/sync", sync_now, methods=["POST"]),
]

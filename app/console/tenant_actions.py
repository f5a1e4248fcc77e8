"""The console's tenant-wide buttons, through the same use cases as the API: pause and resume
(a paused tenant keeps every notice and applies them on resume), and disconnect (the admin's:
the tenant's Elevo profiles given back by a release run, after a confirmation naming the count)."""

from __future__ import annotations

import logging

from starlette.responses import Response
from starlette.routing import Route

from app.console.web import PREFIX, Page, field, guarded, redirect
from app.service import blocks
from app.service.access import Action
from app.service.errors import TenantUnreadable
from app.service.release import release_count, release_status, start_release
from app.store.release import ReleaseState

log = logging.getLogger(__name__)

MAX_PAUSE_REASON = 500


@guarded(Action.PAUSE)
async def pause(page: Page) -> Response:
    assert page.tenant is not None
    reason = field(page, "reason").strip()[:MAX_PAUSE_REASON] or None
    operator = page.session.principal.name
    await blocks.pause_tenant(page.res, page.tenant, operator=operator, reason=reason)
    log.info("console: %s paused %s", operator, page.tenant)
    return redirect(f"{PREFIX}/t/{page.tenant}", page.request)


@guarded(Action.PAUSE)
async def resume(page: Page) -> Response:
    assert page.tenant is not None
    operator = page.session.principal.name
    resumed = await blocks.resume_tenant(page.res, page.tenant, operator=operator)
    log.info("console: %s resumed %s (runs %s)", operator, page.tenant, resumed["runs"])
    return redirect(f"{PREFIX}/t/{page.tenant}", page.request)


@guarded(Action.DELETE_TENANT)
async def disconnect_page(page: Page) -> Response:
    assert page.tenant is not None
    mark = await release_status(page.res, page.tenant)
    if mark is not None and mark.state is ReleaseState.DISCONNECTING:
        return redirect(f"{PREFIX}/t/{page.tenant}/runs/{mark.run}", page.request)
    count = await release_count(page.res, page.tenant)
    return page.render("disconnect.html", count=count, mark=mark, mistyped=False)


@guarded(Action.DELETE_TENANT)
async def disconnect(page: Page) -> Response:
    """Starts the release once the operator typed the tenant's name: a button alone is too
    easy a way to give back every profile."""
    assert page.tenant is not None
    if field(page, "confirm").strip() != page.tenant:
        count = await release_count(page.res, page.tenant)
        mark = await release_status(page.res, page.tenant)
        return page.render("disconnect.html", 400, count=count, mark=mark, mistyped=True)
    try:
        run_id = await start_release(page.res, page.tenant)
    except TenantUnreadable as exc:
        return page.render("error.html", 409, title="Not done", message=str(exc))
    if run_id is None:  # deleted meanwhile
        return redirect(f"{PREFIX}/", page.request)
    log.info("console: %s disconnects %s: release run %s", page.session.principal.name,
             page.tenant, run_id)  # fmt: skip
    return redirect(f"{PREFIX}/t/{page.tenant}/runs/{run_id}", page.request)


routes = [
    Route("/t/{tenant}/pause", pause, methods=["POST"]),
    Route("/t/{tenant}/resume", resume, methods=["POST"]),
    Route("/t/{tenant}/disconnect", disconnect_page, methods=["GET"]),
    Route("/t/{tenant}/disconnect", disconnect, methods=["POST"]),
]

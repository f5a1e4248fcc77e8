"""`/sync/{tenant}`: start runs (the Elevo backend, operators) and read what the sync did."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.auth import known_tenant, operator_of, principal_of, require
from app.api.errors import ApiError
from app.api.schemas import parse_trigger
from app.core.lucca_user import user_id_of
from app.schemas.common import RUN_ID_RE
from app.service.access import Action
from app.service.resources import Resources
from app.service.runs import (
    Dismissal,
    history_document,
    request_run,
    run_document,
    status_document,
)


@known_tenant(Action.START_RUN)
async def trigger(request: Request, res: Resources, tenant: str) -> Response:
    asked = parse_trigger(await request.body())
    resolves = isinstance(asked, Dismissal) or (
        asked.confirms is not None or asked.confirm_unnamed or asked.accept_skip_field_loss
    )
    if resolves:  # what decides for the operator: a sync token only starts and reads runs
        require(principal_of(request), Action.RESOLVE_HELD, tenant)
    run_id = await request_run(res, tenant, asked, operator=operator_of(request))
    return JSONResponse({"run": run_id}, status_code=202)


@known_tenant(Action.READ_STATUS, unreadable=True)
async def status(request: Request, res: Resources, tenant: str) -> Response:
    return JSONResponse(await status_document(res, tenant))


@known_tenant(Action.READ_RUNS)
async def run_detail(request: Request, res: Resources, tenant: str) -> Response:
    run_id = request.path_params["run_id"]
    run = await run_document(res, tenant, run_id) if RUN_ID_RE.fullmatch(run_id) else None
    if run is None:
        raise ApiError.unknown_run()
    return JSONResponse(run)


@known_tenant(Action.READ_STATUS)
async def user_history(request: Request, res: Resources, tenant: str) -> Response:
    user_id = user_id_of({"id": request.path_params["user_id"]})  # "0416" is "416"
    if user_id is None:
        raise ApiError.bad_user()
    return JSONResponse(await history_document(res, tenant, user_id))


routes = [
    Route("/sync/{tenant}", trigger, methods=["POST"]),
    Route("/sync/{tenant}", status, methods=["GET"]),
    Route("/sync/{tenant}/runs/{run_id}", run_detail, methods=["GET"]),
    Route("/sync/{tenant}/users/{user_id}", user_history, methods=["GET"]),
]

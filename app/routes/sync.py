"""`/sync/{tenant}`: triggers from the Elevo backend and operators, and the tenant's status."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.auth import require_admin
from app.core.lucca_user import user_id_of
from app.routes.common import TENANT_PATTERN, error, resources_of
from app.service.errors import TenantUnreadable
from app.service.resources import Resources
from app.service.runs import (
    RunRequest,
    history_document,
    request_run,
    run_document,
    status_document,
)
from app.service.tenants import get_tenant

MODES = ("full", "changes")
RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}-[0-9a-f]{6}")
MAX_USERS_PER_REQUEST = 10_000


class BadRequest(Exception):
    pass


def parse_trigger(body: Any) -> RunRequest:
    """Validate a trigger body; raises BadRequest with a message for the caller."""
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    unknown = set(body) - {"mode", "users", "dry_run", "confirm_suspensions"}
    if unknown:
        raise BadRequest(f"unknown keys: {', '.join(sorted(unknown))}")
    for flag in ("dry_run", "confirm_suspensions"):
        if not isinstance(body.get(flag, False), bool):
            raise BadRequest(f"{flag} must be true or false")
    if "users" in body:
        if "mode" in body:
            raise BadRequest("send either users or mode, not both")
        users = body["users"]
        if not isinstance(users, list) or not users or len(users) > MAX_USERS_PER_REQUEST:
            raise BadRequest(f"users must be a list of 1 to {MAX_USERS_PER_REQUEST} ids")
        ids = [user_id_of({"id": u}) for u in users]
        if any(i is None for i in ids):
            raise BadRequest("every user id must be a positive integer (number or string)")
        return RunRequest.of_users([i for i in ids if i], dry_run=body.get("dry_run", False))
    mode = body.get("mode", "full")
    if mode not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}")
    if body.get("confirm_suspensions") and mode != "full":
        raise BadRequest("confirm_suspensions goes with mode full")
    return RunRequest.of_mode(
        mode,
        dry_run=body.get("dry_run", False),
        confirm_suspensions=body.get("confirm_suspensions", False),
    )


async def _known_tenant(request: Request) -> tuple[Resources, str] | Response:
    res = resources_of(request)
    require_admin(request, res.settings.admin_token)
    tenant = request.path_params["tenant"]
    if not TENANT_PATTERN.fullmatch(tenant):
        return error(404, "unknown_tenant", "no such tenant")
    try:
        config = await get_tenant(res, tenant)
    except TenantUnreadable:
        return error(500, "tenant_unreadable", "the tenant's stored secrets do not decrypt")
    if config is None:
        return error(404, "unknown_tenant", "no such tenant")
    return res, tenant


TenantHandler = Callable[[Request, Resources, str], Awaitable[Response]]


def _for_known_tenant(handler: TenantHandler) -> Callable[[Request], Awaitable[Response]]:
    """Admin bearer first, then a tenant that exists; the handler gets both resolved."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        found = await _known_tenant(request)
        if isinstance(found, Response):
            return found
        return await handler(request, *found)

    return endpoint


@_for_known_tenant
async def trigger(request: Request, res: Resources, tenant: str) -> Response:
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
        trigger_spec = parse_trigger(body)
    except orjson.JSONDecodeError:
        return error(400, "bad_json", "body is not JSON")
    except BadRequest as exc:
        return error(400, "bad_request", str(exc))
    run_id = await request_run(res, tenant, trigger_spec)
    return JSONResponse({"run": run_id}, status_code=202)


@_for_known_tenant
async def status(request: Request, res: Resources, tenant: str) -> Response:
    return JSONResponse(await status_document(res, tenant))


@_for_known_tenant
async def run_detail(request: Request, res: Resources, tenant: str) -> Response:
    run_id = request.path_params["run_id"]
    run = await run_document(res, tenant, run_id) if RUN_ID.fullmatch(run_id) else None
    if run is None:
        return error(404, "unknown_run", "no such run (or it expired)")
    return JSONResponse(run)


@_for_known_tenant
async def user_history(request: Request, res: Resources, tenant: str) -> Response:
    user_id = request.path_params["user_id"]
    if user_id_of({"id": user_id}) is None:
        return error(400, "bad_user", "user id must be a positive integer")
    return JSONResponse(await history_document(res, tenant, user_id))


routes = [
    Route("/sync/{tenant}", trigger, methods=["POST"]),
    Route("/sync/{tenant}", status, methods=["GET"]),
    Route("/sync/{tenant}/runs/{run_id}", run_detail, methods=["GET"]),
    Route("/sync/{tenant}/users/{user_id}", user_history, methods=["GET"]),
]

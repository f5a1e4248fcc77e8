"""`/sync/{tenant}`: triggers from the Elevo backend and operators, and the tenant's status."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from functools import wraps

import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.errors import ApiError, error_response
from app.api.schemas import parse_trigger
from app.auth import require_admin
from app.core.lucca_user import user_id_of
from app.resources import Resources
from app.routes.common import TENANT_PATTERN, error, resources_of
from app.sync.runs import start_run
from app.tenant_store import TenantStoreError

RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}-[0-9a-f]{6}")


async def _known_tenant(request: Request) -> tuple[Resources, str] | Response:
    res = resources_of(request)
    require_admin(request, res.settings.admin_token)
    tenant = request.path_params["tenant"]
    if not TENANT_PATTERN.fullmatch(tenant):
        return error(404, "unknown_tenant", "no such tenant")
    try:
        config = await res.tenants.get(tenant)
    except TenantStoreError:
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
    try:
        run_request = parse_trigger(await request.body())
    except ApiError as exc:
        return error_response(exc)
    # start_run takes the trigger as a dict until it takes the RunRequest itself.
    run_id = await start_run(res, tenant, msgspec.to_builtins(run_request), trigger="api")
    return JSONResponse({"run": run_id}, status_code=202)


@_for_known_tenant
async def status(request: Request, res: Resources, tenant: str) -> Response:
    notes = await res.records.notes(tenant)
    held_users = orjson.loads(notes["held_users"]) if notes.get("held_users") else []
    return JSONResponse(
        {
            "tenant": tenant,
            "last_event_at": notes.get("last_event") or None,
            "last_full_run_at": notes.get("last_full_run") or None,
            "queue_depth": await res.redis.zcard("arq:queue"),
            "safety_guard": {
                "holding": bool(notes.get("held_run")),
                "run": notes.get("held_run") or None,
                "users": held_users,
            },
            "permission_loss": notes.get("permission_loss") or None,
            "lucca_key_error": notes.get("lucca_key_error") or None,
            "elevo_token_error": notes.get("elevo_token_error") or None,
            "last_poll_at": notes.get("last_poll") or None,
            "failing_users": await res.records.user_errors(tenant),
            "runs": await res.records.recent_runs(tenant),
        }
    )


@_for_known_tenant
async def run_detail(request: Request, res: Resources, tenant: str) -> Response:
    run_id = request.path_params["run_id"]
    run = await res.records.get_run(tenant, run_id) if RUN_ID.fullmatch(run_id) else None
    if run is None:
        return error(404, "unknown_run", "no such run (or it expired)")
    return JSONResponse(run)


@_for_known_tenant
async def user_history(request: Request, res: Resources, tenant: str) -> Response:
    user_id = request.path_params["user_id"]
    if user_id_of({"id": user_id}) is None:
        return error(400, "bad_user", "user id must be a positive integer")
    history = await res.records.history(tenant, user_id)
    return JSONResponse({"tenant": tenant, "user": user_id, "history": history})


routes = [
    Route("/sync/{tenant}", trigger, methods=["POST"]),
    Route("/sync/{tenant}", status, methods=["GET"]),
    Route("/sync/{tenant}/runs/{run_id}", run_detail, methods=["GET"]),
    Route("/sync/{tenant}/users/{user_id}", user_history, methods=["GET"]),
]

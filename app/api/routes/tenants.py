"""The tenants API (service.md "Tenants (admin)"): PUT/GET/DELETE `/tenants/{tenant}`, and
`GET /tenants`. An operator token of the tenant reads its config and changes its settings
other than secrets and destinations; the rest takes the admin token.

No answer, log line or error message carries a secret: bodies are never echoed, configs are
shown through `tenant_view`.
"""

from __future__ import annotations

import logging
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.auth import guarded, known_tenant, operator_of, principal_of, resources_of
from app.api.errors import ApiError
from app.api.schemas import parse_pause
from app.schemas.tenant import tenant_view
from app.schemas.tenant_update import parse_tenant_update
from app.service import blocks
from app.service import tenants as tenant_admin
from app.service.access import Action
from app.service.release import start_release
from app.service.resources import Resources

log = logging.getLogger(__name__)

# A config is a few hundred bytes; anything near this is not one.
MAX_BODY_BYTES: Final = 64 * 1024
PAUSE_MAX_BODY_BYTES: Final = 4096  # a reason of at most 500 characters


@guarded(Action.CONFIGURE)
async def put_tenant(request: Request) -> Response:
    res, tenant = resources_of(request), request.path_params["tenant"]
    existing = await tenant_admin.replaceable_config(res, tenant)
    update = parse_tenant_update(
        tenant,
        await request.body(),
        existing=existing,
        allow_http_elevo=res.settings.allow_http_elevo,
        egress=res.settings.egress_policy(),
    )
    created = await tenant_admin.configure_tenant(res, update, by=principal_of(request))
    log.info("tenant %s %s", tenant, "created" if created else "replaced")
    return JSONResponse(tenant_view(update.config), status_code=201 if created else 200)


@guarded(Action.READ_STATUS)
async def get_tenant(request: Request) -> Response:
    tenant = request.path_params["tenant"]
    config = await tenant_admin.get_tenant(resources_of(request), tenant)
    if config is None:
        raise ApiError.unknown_tenant(f"no tenant {tenant!r}")
    return JSONResponse(tenant_view(config))


@guarded(Action.DELETE_TENANT)
async def delete_tenant(request: Request) -> Response:
    tenant = request.path_params["tenant"]
    release = request.query_params.get("release", "false")
    if release not in {"true", "false"}:
        raise ApiError.invalid_body("`release` must be true or false")
    if release == "true":
        run_id = await start_release(resources_of(request), tenant)
        if run_id is None:
            raise ApiError.unknown_tenant(f"no tenant {tenant!r}")
        log.info("tenant %s disconnecting: release run %s", tenant, run_id)
        return JSONResponse({"run": run_id}, status_code=202)
    if not await tenant_admin.delete_tenant(resources_of(request), tenant, by=operator_of(request)):
        raise ApiError.unknown_tenant(f"no tenant {tenant!r}")
    log.info("tenant %s deleted", tenant)
    return Response(status_code=204)


@guarded(Action.LIST_TENANTS)
async def list_tenants(request: Request) -> Response:
    return JSONResponse({"tenants": await tenant_admin.list_tenants(resources_of(request))})


@known_tenant(Action.PAUSE)
async def pause_tenant(request: Request, res: Resources, tenant: str) -> Response:
    reason = parse_pause(await request.body())
    paused = await blocks.pause_tenant(res, tenant, operator=operator_of(request), reason=reason)
    return JSONResponse(paused)


@known_tenant(Action.PAUSE)
async def resume_tenant(request: Request, res: Resources, tenant: str) -> Response:
    return JSONResponse(await blocks.resume_tenant(res, tenant, operator=operator_of(request)))


routes: list[Route] = [
    Route("/tenants", list_tenants, methods=["GET"]),
    Route("/tenants/{tenant}", put_tenant, methods=["PUT"], max_body_size=MAX_BODY_BYTES),
    Route("/tenants/{tenant}", get_tenant, methods=["GET"]),
    Route("/tenants/{tenant}", delete_tenant, methods=["DELETE"]),
    Route(
        "/tenants/{tenant}/pause",
        pause_tenant,
        methods=["POST"],
        max_body_size=PAUSE_MAX_BODY_BYTES,
    ),
    Route(
        "/tenants/{tenant}/resume",
        resume_tenant,
        methods=["POST"],
        max_body_size=PAUSE_MAX_BODY_BYTES,
    ),
]

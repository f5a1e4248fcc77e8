"""The tenants admin API (service.md "Tenants (admin)"): PUT/GET/DELETE `/tenants/{tenant}`.

No answer, log line or error message carries a secret: bodies are never echoed, configs are
shown through `tenant_view`.
"""

from __future__ import annotations

import logging
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.auth import admin, resources_of
from app.api.errors import ApiError
from app.schemas.tenant import parse_tenant, tenant_view
from app.service import tenants as tenant_admin

log = logging.getLogger(__name__)

# A config is a few hundred bytes; anything near this is not one.
MAX_BODY_BYTES: Final = 64 * 1024


@admin
async def put_tenant(request: Request) -> Response:
    res, tenant = resources_of(request), request.path_params["tenant"]
    existing = await tenant_admin.replaceable_config(res, tenant)
    config = parse_tenant(
        tenant,
        await request.body(),
        existing=existing,
        allow_http_elevo=res.settings.allow_http_elevo,
        egress=res.settings.egress_policy(),
    )
    created = await tenant_admin.put_tenant(res, config)
    log.info("tenant %s %s", tenant, "created" if created else "replaced")
    return JSONResponse(tenant_view(config), status_code=201 if created else 200)


@admin
async def get_tenant(request: Request) -> Response:
    tenant = request.path_params["tenant"]
    config = await tenant_admin.get_tenant(resources_of(request), tenant)
    if config is None:
        raise ApiError.unknown_tenant(f"no tenant {tenant!r}")
    return JSONResponse(tenant_view(config))


@admin
async def delete_tenant(request: Request) -> Response:
    tenant = request.path_params["tenant"]
    if not await tenant_admin.delete_tenant(resources_of(request), tenant):
        raise ApiError.unknown_tenant(f"no tenant {tenant!r}")
    log.info("tenant %s deleted", tenant)
    return Response(status_code=204)


@admin
async def list_tenants(request: Request) -> Response:
    return JSONResponse({"tenants": await tenant_admin.list_tenants(resources_of(request))})


routes: list[Route] = [
    Route("/tenants", list_tenants, methods=["GET"]),
    Route("/tenants/{tenant}", put_tenant, methods=["PUT"], max_body_size=MAX_BODY_BYTES),
    Route("/tenants/{tenant}", get_tenant, methods=["GET"]),
    Route("/tenants/{tenant}", delete_tenant, methods=["DELETE"]),
]

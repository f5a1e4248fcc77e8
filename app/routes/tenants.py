"""The tenants admin API (service.md "Tenants (admin)"): PUT/GET/DELETE `/tenants/{tenant}`.

Errors answer `{"error": <code>, "detail": <sentence>}`; no answer, log line or error message
carries a secret (bodies are never echoed, configs are shown through `tenant_view`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Final

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.auth import require_admin
from app.routes.common import error, resources_of
from app.service import tenants as tenant_admin
from app.service.errors import TenantUnreadable
from app.tenants import TenantValidationError, parse_tenant, tenant_view, validate_tenant_name

log = logging.getLogger(__name__)

# A config is a few hundred bytes; anything near this is not one.
MAX_BODY_BYTES: Final = 64 * 1024

Handler = Callable[[Request], Awaitable[Response]]


def _admin(handler: Handler) -> Handler:
    """Check the admin token, then the tenant name, before the handler runs."""

    @wraps(handler)
    async def guarded(request: Request) -> Response:
        try:
            require_admin(request, resources_of(request).settings.admin_token)
        except HTTPException as exc:
            response = error(exc.status_code, "unauthorized", exc.detail)
            response.headers.update(exc.headers or {})
            return response
        tenant = request.path_params.get("tenant")
        if tenant is not None:
            try:
                validate_tenant_name(tenant)
            except TenantValidationError as exc:
                return error(400, "invalid_tenant", exc.message)
        try:
            return await handler(request)
        except TenantUnreadable as exc:
            # The SECRETS_KEY in use cannot read what is stored: an operator must act.
            log.error("tenant config unreadable: %s", exc)
            return error(500, "tenant_unreadable", str(exc))

    return guarded


@_admin
async def put_tenant(request: Request) -> Response:
    resources = resources_of(request)
    tenant = request.path_params["tenant"]
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return error(400, "invalid_json", "the body is not valid JSON")
    existing = await tenant_admin.replaceable_config(resources, tenant)
    try:
        config = parse_tenant(
            tenant,
            body,
            existing=existing,
            allow_http_elevo=resources.settings.allow_http_elevo,
        )
    except TenantValidationError as exc:
        return error(400, "invalid_config", exc.message)
    created = await tenant_admin.put_tenant(resources, config)
    log.info("tenant %s %s", tenant, "created" if created else "replaced")
    return JSONResponse(tenant_view(config), status_code=201 if created else 200)


@_admin
async def get_tenant(request: Request) -> Response:
    resources = resources_of(request)
    tenant = request.path_params["tenant"]
    config = await tenant_admin.get_tenant(resources, tenant)
    if config is None:
        return error(404, "unknown_tenant", f"no tenant {tenant!r}")
    return JSONResponse(tenant_view(config))


@_admin
async def delete_tenant(request: Request) -> Response:
    resources = resources_of(request)
    tenant = request.path_params["tenant"]
    if not await tenant_admin.delete_tenant(resources, tenant):
        return error(404, "unknown_tenant", f"no tenant {tenant!r}")
    log.info("tenant %s deleted", tenant)
    return Response(status_code=204)


@_admin
async def list_tenants(request: Request) -> Response:
    resources = resources_of(request)
    return JSONResponse({"tenants": await tenant_admin.list_tenants(resources)})


routes: list[Route] = [
    Route("/tenants", list_tenants, methods=["GET"]),
    Route("/tenants/{tenant}", put_tenant, methods=["PUT"], max_body_size=MAX_BODY_BYTES),
    Route("/tenants/{tenant}", get_tenant, methods=["GET"]),
    Route("/tenants/{tenant}", delete_tenant, methods=["DELETE"]),
]

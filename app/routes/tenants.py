"""The tenants admin API (service.md "Tenants (admin)"): PUT/GET/DELETE `/tenants/{tenant}`.

Errors answer `{"error": <code>, "detail": <sentence>}`; no answer, log line or error message
carries a secret (bodies are never echoed, configs are shown through `tenant_view`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.errors import ApiError, error_response
from app.api.responses import tenant_view
from app.api.schemas import parse_tenant, validate_tenant_name
from app.auth import require_admin
from app.routes.common import error, resources_of
from app.sync import keys
from app.sync.runs import purge_tenant_state, start_run
from app.tenant_store import TenantStoreError

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
            except ApiError as exc:
                return error_response(exc)
        try:
            return await handler(request)
        except TenantStoreError as exc:
            # The SECRETS_KEY in use cannot read what is stored: an operator must act.
            log.error("tenant config unreadable: %s", exc)
            return error(500, "tenant_unreadable", str(exc))

    return guarded


@_admin
async def put_tenant(request: Request) -> Response:
    resources = resources_of(request)
    tenant = request.path_params["tenant"]
    body = await request.body()
    try:
        existing = await resources.tenants.get(tenant)
    except TenantStoreError as exc:
        # A body with every secret may still replace an unreadable config (the way out).
        log.warning("replacing an unreadable tenant config: %s", exc)
        existing = None
    try:
        config = parse_tenant(
            tenant,
            body,
            existing=existing,
            allow_http_elevo=resources.settings.allow_http_elevo,
        )
    except ApiError as exc:
        return error_response(exc)
    created = await resources.tenants.put(config)
    # This process may have cached the old config, or the tenant's absence.
    resources.contexts.forget(tenant)
    await resources.records.note(
        tenant, lucca_key_error="", elevo_token_error="", permission_loss=""
    )
    if await resources.redis.delete(keys.lucca_revoked(tenant)):
        # Lucca had refused the old key: catch up on what the sync missed meanwhile.
        await start_run(resources, tenant, {"mode": "full"}, trigger="key-replaced")
    log.info("tenant %s %s", tenant, "created" if created else "replaced")
    return JSONResponse(tenant_view(config), status_code=201 if created else 200)


@_admin
async def get_tenant(request: Request) -> Response:
    resources = resources_of(request)
    tenant = request.path_params["tenant"]
    config = await resources.tenants.get(tenant)
    if config is None:
        return error(404, "unknown_tenant", f"no tenant {tenant!r}")
    return JSONResponse(tenant_view(config))


@_admin
async def delete_tenant(request: Request) -> Response:
    resources = resources_of(request)
    tenant = request.path_params["tenant"]
    if not await resources.tenants.delete(tenant):
        return error(404, "unknown_tenant", f"no tenant {tenant!r}")
    resources.contexts.forget(tenant)
    await purge_tenant_state(resources.redis, tenant)
    log.info("tenant %s deleted", tenant)
    return Response(status_code=204)


@_admin
async def list_tenants(request: Request) -> Response:
    resources = resources_of(request)
    return JSONResponse({"tenants": await resources.tenants.list()})


routes: list[Route] = [
    Route("/tenants", list_tenants, methods=["GET"]),
    Route("/tenants/{tenant}", put_tenant, methods=["PUT"], max_body_size=MAX_BODY_BYTES),
    Route("/tenants/{tenant}", get_tenant, methods=["GET"]),
    Route("/tenants/{tenant}", delete_tenant, methods=["DELETE"]),
]

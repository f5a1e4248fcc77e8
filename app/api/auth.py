"""Who may call: the admin bearer token of `/tenants/*`, `/sync/*` and `/metrics` (service.md
`ADMIN_TOKEN`), and the guards every admin route goes through."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps

from starlette.requests import Request
from starlette.responses import Response

from app.api.errors import ApiError, ErrorCode
from app.schemas.tenant import validate_tenant_name
from app.secret import Secret
from app.service.access import ADMIN_NAME, is_admin_token
from app.service.resources import Resources
from app.service.tenants import get_tenant

UNAUTHORIZED_DETAIL = "a valid admin bearer token is required"
# The name a held run's resolution records for the token that confirmed or dismissed it.
ADMIN_OPERATOR = ADMIN_NAME

Endpoint = Callable[[Request], Awaitable[Response]]
TenantEndpoint = Callable[[Request, Resources, str], Awaitable[Response]]


def resources_of(request: Request) -> Resources:
    resources: Resources = request.state.resources
    return resources


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def require_admin(request: Request, admin_token: Secret) -> None:
    """Raise a 401 `ApiError` unless the request carries the admin token."""
    token = bearer_token(request)
    if token is None or not is_admin_token(token, admin_token):
        raise ApiError.of(
            ErrorCode.UNAUTHORIZED, UNAUTHORIZED_DETAIL, headers={"WWW-Authenticate": "Bearer"}
        )


def operator_of(request: Request) -> str:
    """The name of the token an admin request carries, as runs record it. There is one
    token, the admin's, until scoped tokens come; `admin` has checked it already."""
    return ADMIN_OPERATOR


def admin(endpoint: Endpoint) -> Endpoint:
    """The admin token first, then a well-formed tenant name when the path has one."""

    @wraps(endpoint)
    async def guarded(request: Request) -> Response:
        require_admin(request, resources_of(request).settings.admin_token)
        tenant = request.path_params.get("tenant")
        if tenant is not None:
            validate_tenant_name(tenant)
        return await endpoint(request)

    return guarded


def known_tenant(endpoint: TenantEndpoint) -> Endpoint:
    """`admin`, then a tenant that exists; the endpoint gets the resources and the name."""

    @admin
    @wraps(endpoint)
    async def guarded(request: Request) -> Response:
        res, tenant = resources_of(request), request.path_params["tenant"]
        if await get_tenant(res, tenant) is None:
            raise ApiError.unknown_tenant()
        return await endpoint(request, res, tenant)

    return guarded

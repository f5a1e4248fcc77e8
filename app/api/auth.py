"""Who may call: the bearer token of `/tenants/*`, `/sync/*` and `/metrics` (the `ADMIN_TOKEN`
or a tenant token, app/service/access.py), and the guards every such route goes through. Each
route names the `Action` it performs; `Principal.allows` decides.

The order of the answers: 401 without a token that stands for somebody; 404 for a malformed
tenant name, and for another tenant than a tenant token's own (a token does not learn which
tenants exist); 403 for an action its scope does not allow, naming the action; then the route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps

from starlette.requests import Request
from starlette.responses import Response

from app.api.errors import ApiError, ErrorCode
from app.schemas.tenant import validate_tenant_name
from app.service.access import Action, Principal, authenticate
from app.service.errors import TenantUnreadable
from app.service.resources import Resources
from app.service.tenants import get_tenant

UNAUTHORIZED_DETAIL = "a valid bearer token is required"

Endpoint = Callable[[Request], Awaitable[Response]]
TenantEndpoint = Callable[[Request, Resources, str], Awaitable[Response]]
Guard = Callable[[Endpoint], Endpoint]


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


async def authenticated(request: Request) -> Principal:
    """The caller, kept on the request for `principal_of`; a 401 `ApiError` for nobody."""
    principal = await authenticate(resources_of(request), bearer_token(request))
    if principal is None:
        raise ApiError.of(
            ErrorCode.UNAUTHORIZED, UNAUTHORIZED_DETAIL, headers={"WWW-Authenticate": "Bearer"}
        )
    request.state.principal = principal
    return principal


def principal_of(request: Request) -> Principal:
    """The caller a guard has authenticated."""
    principal: Principal = request.state.principal
    return principal


def operator_of(request: Request) -> str:
    """The name of the token a request carries (a token id, or `admin`), as runs and the
    audit list record it."""
    return principal_of(request).name


def require(principal: Principal, action: Action, tenant: str | None = None) -> None:
    """A 404 for a tenant not the token's own, a 403 naming the action its scope lacks."""
    if tenant is not None and principal.tenant not in (None, tenant):
        raise ApiError.unknown_tenant()
    if not principal.allows(action, tenant):
        raise ApiError.forbidden(f"a {principal.scope} token may not {action.value}")


def guarded(action: Action) -> Guard:
    """The bearer token first, then a well-formed tenant name when the path has one, then
    whether the caller may do `action` (on that tenant)."""

    def guard(endpoint: Endpoint) -> Endpoint:
        @wraps(endpoint)
        async def checked(request: Request) -> Response:
            principal = await authenticated(request)
            tenant = request.path_params.get("tenant")
            if tenant is not None:
                validate_tenant_name(tenant)
            require(principal, action, tenant)
            return await endpoint(request)

        return checked

    return guard


def known_tenant(
    action: Action, *, unreadable: bool = False
) -> Callable[[TenantEndpoint], Endpoint]:
    """`guarded(action)`, then a tenant that exists; the endpoint gets the resources and the
    name. `unreadable`: a tenant whose stored config cannot be read still gets the endpoint
    (its status says why), instead of a 500 `tenant_unreadable`."""

    def guard(endpoint: TenantEndpoint) -> Endpoint:
        @guarded(action)
        @wraps(endpoint)
        async def checked(request: Request) -> Response:
            res, tenant = resources_of(request), request.path_params["tenant"]
            try:
                known = await get_tenant(res, tenant) is not None
            except TenantUnreadable:
                if not unreadable:
                    raise
                known = True
            if not known:
                raise ApiError.unknown_tenant()
            return await endpoint(request, res, tenant)

        return checked

    return guard

from __future__ import annotations

import pytest
from starlette.requests import Request

from app.api.auth import bearer_token, require
from app.api.errors import ApiError, ErrorCode
from app.secret import Secret
from app.service.access import ADMIN, Action, Principal, Scope, is_admin_token

TOKEN = "admin-token-5f4e3d2c1b"


def request(*headers: tuple[str, str]) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/tenants",
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        }
    )


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (f"Bearer {TOKEN}", TOKEN),
        (f"bearer {TOKEN}", TOKEN),
        (f"BEARER   {TOKEN}  ", TOKEN),
        ("Bearer a b", "a b"),
    ],
)
def test_bearer_token(header: str, token: str) -> None:
    assert bearer_token(request(("Authorization", header))) == token


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ", "Basic abc", TOKEN, "Token abc"])
def test_no_bearer_token(header: str) -> None:
    assert bearer_token(request(("Authorization", header))) is None


def test_no_header() -> None:
    assert bearer_token(request()) is None


def test_the_admin_token_is_recognised() -> None:
    assert is_admin_token(TOKEN, Secret(TOKEN))


@pytest.mark.parametrize(
    "token", ["nope", TOKEN[:-1], TOKEN + TOKEN, TOKEN.upper(), "é", f"Bearer {TOKEN}"]
)
def test_any_other_token_is_not_the_admins(token: str) -> None:
    assert not is_admin_token(token, Secret(TOKEN))


SYNC = Principal("0123456789ab", Scope.SYNC, "acme")
OPERATOR = Principal("ba9876543210", Scope.OPERATOR, "acme")


def test_require_lets_each_scope_do_what_it_may() -> None:
    require(ADMIN, Action.DELETE_TENANT, "beta")
    require(ADMIN, Action.LIST_TENANTS)
    require(SYNC, Action.START_RUN, "acme")
    require(SYNC, Action.READ_RUNS, "acme")
    require(OPERATOR, Action.RESOLVE_HELD, "acme")
    require(OPERATOR, Action.CONFIGURE, "acme")


@pytest.mark.parametrize(
    ("principal", "action", "tenant"),
    [
        (SYNC, Action.RESOLVE_HELD, "acme"),
        (SYNC, Action.READ_STATUS, "acme"),
        (SYNC, Action.CONFIGURE, "acme"),
        (OPERATOR, Action.CONFIGURE_SECRETS, "acme"),
        (OPERATOR, Action.DELETE_TENANT, "acme"),
        (OPERATOR, Action.MANAGE_TOKENS, "acme"),
        (OPERATOR, Action.LIST_TENANTS, None),
        (OPERATOR, Action.METRICS, None),
    ],
)
def test_require_refuses_what_a_scope_lacks_naming_it(
    principal: Principal, action: Action, tenant: str | None
) -> None:
    with pytest.raises(ApiError) as info:
        require(principal, action, tenant)
    assert (info.value.status, info.value.code) == (403, ErrorCode.FORBIDDEN)
    assert action.value in info.value.detail


@pytest.mark.parametrize("principal", [SYNC, OPERATOR])
@pytest.mark.parametrize("action", [Action.START_RUN, Action.READ_RUNS, Action.DELETE_TENANT])
def test_another_tenant_is_unknown_to_a_tenant_token(principal: Principal, action: Action) -> None:
    with pytest.raises(ApiError) as info:
        require(principal, action, "beta")
    assert (info.value.status, info.value.code) == (404, ErrorCode.UNKNOWN_TENANT)

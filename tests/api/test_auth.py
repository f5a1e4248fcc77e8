from __future__ import annotations

import pytest
from starlette.requests import Request

from app.api.auth import bearer_token, require_admin
from app.api.errors import ApiError, ErrorCode
from app.secret import Secret

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


def test_require_admin_accepts_the_token() -> None:
    require_admin(request(("Authorization", f"Bearer {TOKEN}")), Secret(TOKEN))


@pytest.mark.parametrize(
    "headers",
    [
        (),
        (("Authorization", "Bearer nope"),),
        (("Authorization", f"Bearer {TOKEN[:-1]}"),),
        (("Authorization", f"Bearer {TOKEN}{TOKEN}"),),
        (("Authorization", f"Basic {TOKEN}"),),
        (("Authorization", f"Bearer {TOKEN.upper()}"),),
        (("Authorization", "Bearer é"),),
    ],
)
def test_require_admin_refuses(headers: tuple[tuple[str, str], ...]) -> None:
    with pytest.raises(ApiError) as info:
        require_admin(request(*headers), Secret(TOKEN))
    assert (info.value.status, info.value.code) == (401, ErrorCode.UNAUTHORIZED)
    assert info.value.headers == {"WWW-Authenticate": "Bearer"}
    assert TOKEN not in str(info.value.detail)

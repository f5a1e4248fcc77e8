"""`ApiError` and its handlers: every refusal answers `{"error", "detail"}`."""

from __future__ import annotations

from typing import cast

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request

from app.api.errors import STATUS_OF, ApiError, ErrorCode, api_error_handler, http_error_handler

REQUEST = cast(Request, object())  # the handlers do not read the request


def test_every_code_has_a_status() -> None:
    assert set(STATUS_OF) == set(ErrorCode)


def test_named_constructors_carry_their_code_and_status() -> None:
    assert (ApiError.unknown_tenant().status, ApiError.unknown_tenant().code) == (
        404,
        ErrorCode.UNKNOWN_TENANT,
    )
    error = ApiError.invalid_body("`x` is wrong - at `$`")
    assert (error.status, error.code, str(error)) == (400, "invalid_body", "`x` is wrong - at `$`")


async def test_the_handler_renders_code_and_detail() -> None:
    error = ApiError.of(ErrorCode.UNAUTHORIZED, "nope", headers={"WWW-Authenticate": "Bearer"})
    response = await api_error_handler(REQUEST, error)
    assert response.status_code == 401
    assert orjson.loads(bytes(response.body)) == {"error": "unauthorized", "detail": "nope"}
    assert response.headers["www-authenticate"] == "Bearer"


async def test_starlette_errors_get_a_code() -> None:
    response = await http_error_handler(REQUEST, HTTPException(405))
    assert response.status_code == 405
    assert orjson.loads(bytes(response.body))["error"] == "method_not_allowed"
    response = await http_error_handler(REQUEST, HTTPException(418))
    assert orjson.loads(bytes(response.body))["error"] == "http_error"

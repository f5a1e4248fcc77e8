"""`ApiError` and its handlers: every refusal answers `{"error", "detail"}`."""

from __future__ import annotations

from typing import cast

import orjson
import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request

from app.api.errors import (
    STATUS_OF,
    ApiError,
    ErrorCode,
    api_error_handler,
    http_error_handler,
    invalid_document_handler,
    service_error_handler,
    trigger_error_handler,
)
from app.schemas.errors import InvalidDocument, InvalidName, NotJson
from app.service.errors import BadTrigger, RunConflict, TenantUnreadable, Unavailable, UnknownRun

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


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (NotJson("not JSON"), 400, "bad_json"),
        (InvalidName("no such tenant"), 404, "unknown_tenant"),
        (InvalidDocument("`x` is wrong - at `$.x`"), 400, "invalid_body"),
    ],
)
async def test_a_broken_document_is_answered_by_its_kind(
    error: InvalidDocument, status: int, code: str
) -> None:
    response = await invalid_document_handler(REQUEST, error)
    assert response.status_code == status
    assert orjson.loads(bytes(response.body))["error"] == code


async def test_the_service_refusals_are_answered_alike_everywhere() -> None:
    response = await service_error_handler(REQUEST, Unavailable("cannot queue; retry later"))
    assert response.status_code == 503
    assert orjson.loads(bytes(response.body)) == {
        "error": "unavailable",
        "detail": "cannot queue; retry later",
    }
    response = await service_error_handler(REQUEST, TenantUnreadable("tenant 'a' unreadable"))
    assert response.status_code == 500
    assert orjson.loads(bytes(response.body))["error"] == "tenant_unreadable"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (RunConflict("full run 20260101T000000-aaaaaa is running"), 409, "conflict"),
        (UnknownRun("no run 20260101T000000-aaaaaa"), 404, "unknown_run"),
        (BadTrigger("`confirm_suspensions` takes the id of the held run"), 400, "invalid_body"),
    ],
)
async def test_a_refused_trigger_names_the_run_in_the_way(
    error: Exception, status: int, code: str
) -> None:
    response = await trigger_error_handler(REQUEST, error)
    assert response.status_code == status
    assert orjson.loads(bytes(response.body)) == {"error": code, "detail": str(error)}

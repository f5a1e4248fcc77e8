"""The API's one error type and its handler: every refusal answers `{"error", "detail"}`.

`ApiError` carries the status, a machine code from `ErrorCode` and a sentence for people. The
detail never holds a secret or a value the caller sent: it names the field at most (or a run
id, which the trigger's schema has checked).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.schemas.errors import InvalidDocument, InvalidName, NotJson
from app.service.errors import (
    BadTrigger,
    Forbidden,
    RunConflict,
    TenantUnreadable,
    TooManyTokens,
    Unavailable,
    UnknownRun,
)

log = logging.getLogger(__name__)


class ErrorCode(StrEnum):
    """Every code an answer can carry; `STATUS_OF` gives the status each goes with."""

    UNAUTHORIZED = "unauthorized"  # no bearer token, or one that stands for nobody
    FORBIDDEN = "forbidden"  # the token's scope does not allow this (the detail names what)
    NOT_FOUND = "not_found"  # no such route
    METHOD_NOT_ALLOWED = "method_not_allowed"
    HTTP_ERROR = "http_error"  # any other status Starlette raises
    UNKNOWN_TENANT = "unknown_tenant"  # the tenant name is invalid or names no tenant
    UNKNOWN_RUN = "unknown_run"  # a run id in the path or the trigger names no run
    UNKNOWN_TOKEN = "unknown_token"  # noqa: S105 - a token id in the path names no live token
    CONFLICT = "conflict"  # a trigger the runs refuse now (a running run...), a token too many
    BAD_USER = "bad_user"  # a user id in the path is not a positive integer
    BAD_JSON = "bad_json"  # the body is not JSON (or, for a webhook, not a JSON object)
    INVALID_BODY = "invalid_body"  # JSON, but not a valid tenant config or sync trigger
    DISCONNECTED = "disconnected"  # the body was cut short
    REQUEST_TIMEOUT = "request_timeout"  # the body did not arrive in time
    BAD_SIGNATURE = "bad_signature"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    TENANT_UNREADABLE = "tenant_unreadable"  # the stored config does not decrypt
    UNAVAILABLE = "unavailable"  # Redis (or a config the webhook needs) cannot be read


STATUS_OF: Final[Mapping[ErrorCode, int]] = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.HTTP_ERROR: 400,
    ErrorCode.UNKNOWN_TENANT: 404,
    ErrorCode.UNKNOWN_RUN: 404,
    ErrorCode.UNKNOWN_TOKEN: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.BAD_USER: 400,
    ErrorCode.BAD_JSON: 400,
    ErrorCode.INVALID_BODY: 400,
    ErrorCode.DISCONNECTED: 400,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.BAD_SIGNATURE: 401,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.TENANT_UNREADABLE: 500,
    ErrorCode.UNAVAILABLE: 503,
}

# Starlette's own refusals (no route, wrong method, the admin guard's 401).
_CODE_OF_HTTP_STATUS: Final = {
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
}


class ApiError(Exception):
    """A refusal the API answers on purpose; `str()` is the detail."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        detail: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})

    @classmethod
    def of(cls, code: ErrorCode, detail: str, headers: Mapping[str, str] | None = None) -> ApiError:
        """The error with the status its code goes with."""
        return cls(STATUS_OF[code], code, detail, headers)

    @classmethod
    def unknown_tenant(cls, detail: str = "no such tenant") -> ApiError:
        # The same code for an invalid name and an absent tenant: a name that cannot be
        # stored is simply one no tenant has.
        return cls.of(ErrorCode.UNKNOWN_TENANT, detail)

    @classmethod
    def forbidden(cls, detail: str) -> ApiError:
        return cls.of(ErrorCode.FORBIDDEN, detail)

    @classmethod
    def unknown_token(cls) -> ApiError:
        return cls.of(ErrorCode.UNKNOWN_TOKEN, "no such token (or it expired)")

    @classmethod
    def unknown_run(cls) -> ApiError:
        return cls.of(ErrorCode.UNKNOWN_RUN, "no such run (or it expired)")

    @classmethod
    def conflict(cls, detail: str) -> ApiError:
        return cls.of(ErrorCode.CONFLICT, detail)

    @classmethod
    def bad_user(cls) -> ApiError:
        return cls.of(ErrorCode.BAD_USER, "user id must be a positive integer of at most 18 digits")

    @classmethod
    def bad_json(cls, detail: str = "the body is not valid JSON") -> ApiError:
        return cls.of(ErrorCode.BAD_JSON, detail)

    @classmethod
    def invalid_body(cls, detail: str) -> ApiError:
        return cls.of(ErrorCode.INVALID_BODY, detail)

    @classmethod
    def tenant_unreadable(cls, detail: str | None = None) -> ApiError:
        return cls.of(
            ErrorCode.TENANT_UNREADABLE, detail or "the tenant's stored secrets do not decrypt"
        )

    @classmethod
    def unavailable(cls, detail: str | None = None) -> ApiError:
        return cls.of(ErrorCode.UNAVAILABLE, detail or "state store unavailable; retry later")


def error_response(exc: ApiError) -> Response:
    return JSONResponse(
        {"error": exc.code.value, "detail": exc.detail},
        status_code=exc.status,
        headers=exc.headers or None,
    )


async def api_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for `ApiError`."""
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for its own `HTTPException` (404 route, 405, 401 guard)."""
    assert isinstance(exc, HTTPException)
    code = _CODE_OF_HTTP_STATUS.get(exc.status_code, ErrorCode.HTTP_ERROR)
    return error_response(ApiError(exc.status_code, code, exc.detail, exc.headers))


async def service_error_handler(request: Request, exc: Exception) -> Response:
    """The service's refusals, answered the same way on every route."""
    if isinstance(exc, Unavailable):
        return error_response(ApiError.unavailable(str(exc) or None))
    assert isinstance(exc, TenantUnreadable)
    # The SECRETS_KEY in use cannot read what is stored: an operator must act. The message
    # names the tenant and the reason, never a secret.
    log.error("tenant config unreadable: %s", exc)
    return error_response(ApiError.tenant_unreadable(str(exc) or None))


async def trigger_error_handler(request: Request, exc: Exception) -> Response:
    """A trigger the service refuses: its message names the run in question, never a value
    the caller sent that is not a run id."""
    if isinstance(exc, RunConflict):
        return error_response(ApiError.conflict(str(exc)))
    if isinstance(exc, UnknownRun):
        return error_response(ApiError.of(ErrorCode.UNKNOWN_RUN, str(exc)))
    assert isinstance(exc, BadTrigger)
    return error_response(ApiError.invalid_body(str(exc)))


async def refusal_handler(request: Request, exc: Exception) -> Response:
    """What the caller's token may not do, or a token too many: the message names the
    setting or the limit, never a value."""
    if isinstance(exc, Forbidden):
        return error_response(ApiError.forbidden(str(exc)))
    assert isinstance(exc, TooManyTokens)
    return error_response(ApiError.conflict(str(exc)))


async def invalid_document_handler(request: Request, exc: Exception) -> Response:
    """A body (or a tenant name) that breaks its schema; the message names the path."""
    assert isinstance(exc, InvalidDocument)
    if isinstance(exc, NotJson):
        return error_response(ApiError.bad_json())
    if isinstance(exc, InvalidName):
        return error_response(ApiError.unknown_tenant(str(exc)))
    return error_response(ApiError.invalid_body(str(exc)))


EXCEPTION_HANDLERS: Final = {
    ApiError: api_error_handler,
    HTTPException: http_error_handler,
    Unavailable: service_error_handler,
    TenantUnreadable: service_error_handler,
    RunConflict: trigger_error_handler,
    UnknownRun: trigger_error_handler,
    BadTrigger: trigger_error_handler,
    Forbidden: refusal_handler,
    TooManyTokens: refusal_handler,
    InvalidDocument: invalid_document_handler,
}

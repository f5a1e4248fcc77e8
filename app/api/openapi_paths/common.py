"""What every path group of the OpenAPI document shares: builders and the common answers."""

from __future__ import annotations

from typing import Any, Final

import msgspec

from app.api.errors import ErrorCode
from app.api.responses import ErrorBody
from app.schemas.common import TENANT_PATTERN
from app.service.access import Action, Scope, scopes_allowing

Schema = dict[str, Any]

SCHEMA_REF: Final = "#/components/schemas/{name}"
ADMIN: Final[list[dict[str, list[str]]]] = [{"adminBearer": []}]
ADMIN_OR_TENANT: Final[list[dict[str, list[str]]]] = [{"adminBearer": []}, {"tenantBearer": []}]


def ref(struct: type[msgspec.Struct]) -> Schema:
    return {"$ref": SCHEMA_REF.format(name=struct.__name__)}


def json_response(schema: Schema | type[msgspec.Struct], description: str) -> Schema:
    body = schema if isinstance(schema, dict) else ref(schema)
    return {"description": description, "content": {"application/json": {"schema": body}}}


def text_response(description: str) -> Schema:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def error_response(description: str, *codes: ErrorCode) -> Schema:
    only_these = {"type": "object", "properties": {"error": {"enum": [c.value for c in codes]}}}
    return json_response({"allOf": [ref(ErrorBody), only_these]}, description)


def request_body(struct: type[msgspec.Struct], *, required: bool, **examples: Any) -> Schema:
    media: Schema = {"schema": ref(struct), **({"examples": examples} if examples else {})}
    return {"required": required, "content": {"application/json": media}}


def path_param(name: str, pattern: str | None, description: str, example: str) -> Schema:
    schema: Schema = {"type": "string", **({"pattern": pattern} if pattern else {})}
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
        "example": example,
    }


def header_param(name: str, description: str) -> Schema:
    schema = {"type": "string"}
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": schema,
    }


TENANT_PARAM: Final = path_param(
    "tenant",
    TENANT_PATTERN,
    "The tenant's name: 1 to 63 characters of a-z, 0-9 and '-', not starting with '-'.",
    "acme",
)
UNAUTHORIZED: Final = {
    **error_response(
        "Missing bearer token, or one that is wrong, revoked or expired.", ErrorCode.UNAUTHORIZED
    ),
    "headers": {
        "WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}, "required": True}
    },
}
FORBIDDEN: Final = error_response(
    "The token's scope does not allow this (the detail names the action or the setting).",
    ErrorCode.FORBIDDEN,
)
UNAVAILABLE: Final = error_response(
    "Redis, which holds all state, is unreachable; retry.", ErrorCode.UNAVAILABLE
)
UNREADABLE: Final = error_response(
    "The stored config does not decrypt with any SECRETS_KEY key: an operator must act.",
    ErrorCode.TENANT_UNREADABLE,
)
NO_TENANT: Final = error_response(
    "No such tenant (or not a valid tenant name).", ErrorCode.UNKNOWN_TENANT, ErrorCode.NOT_FOUND
)
BAD_BODY: Final = error_response(
    "Not JSON, or not a valid body (the detail names the field, never a value).",
    ErrorCode.BAD_JSON,
    ErrorCode.INVALID_BODY,
)
SLOW_BODY: Final = error_response(
    "The body did not arrive within REQUEST_BODY_TIMEOUT_SECONDS.", ErrorCode.REQUEST_TIMEOUT
)


def guarded(operation_id: str, action: Action, responses: Schema, **extra: Any) -> Schema:
    """An operation behind a bearer token: it may also answer 401, 403 and 503."""
    scopes = scopes_allowing(action)
    every = {"401": UNAUTHORIZED, "403": FORBIDDEN, "503": UNAVAILABLE, **responses}
    return {
        "operationId": operation_id,
        "security": ADMIN if scopes == (Scope.ADMIN,) else ADMIN_OR_TENANT,
        "x-scopes": [scope.value for scope in scopes],
        **extra,
        "responses": every,
    }

"""The service's OpenAPI 3.1 description, served at `GET /openapi.json`.

The schemas are generated from the Structs of app/api/schemas.py and app/api/responses.py; only
the paths, their parameters and their responses are written here. tests/security/test_openapi.py
keeps the paths in step with the app's routes, and schemathesis checks every answer against
the document. Each error response lists the `ErrorCode`s it can carry.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final

import msgspec

from app.api.errors import ErrorCode
from app.api.limits import MAX_BODY_BYTES
from app.api.responses import (
    AuditLog,
    ErrorBody,
    Health,
    LuccaEvent,
    NewToken,
    RunStarted,
    SyncStatus,
    TenantList,
    TenantPaused,
    TenantResumed,
    TokenList,
    UserHistory,
    WebhookAccepted,
    WebhookRegistration,
)
from app.api.responses import Run as RunDocument
from app.api.routes.access import MAX_BODY_BYTES as TOKEN_MAX_BODY_BYTES
from app.api.routes.tenants import MAX_BODY_BYTES as TENANT_MAX_BODY_BYTES
from app.api.routes.tenants import PAUSE_MAX_BODY_BYTES
from app.api.routes.webhooks import MAX_BODY_BYTES as WEBHOOK_MAX_BODY_BYTES
from app.api.schemas import PauseBody, SyncTrigger, TokenRequest
from app.schemas.common import RUN_ID_PATTERN, TENANT_PATTERN, USER_ID_PATTERN
from app.schemas.tenant import TenantBody, TenantView
from app.service.access import TOKEN_ID_RE, Action, Scope, scopes_allowing

Schema = dict[str, Any]

_REF: Final = "#/components/schemas/{name}"
_COMPONENTS: Final = (
    ErrorBody,
    Health,
    TenantBody,
    TenantView,
    TenantList,
    PauseBody,
    TenantPaused,
    TenantResumed,
    LuccaEvent,
    WebhookAccepted,
    WebhookRegistration,
    SyncTrigger,
    RunStarted,
    RunDocument,
    SyncStatus,
    UserHistory,
    TokenRequest,
    NewToken,
    TokenList,
    AuditLog,
)
ADMIN: Final[list[dict[str, list[str]]]] = [{"adminBearer": []}]
ADMIN_OR_TENANT: Final[list[dict[str, list[str]]]] = [{"adminBearer": []}, {"tenantBearer": []}]

# The contract's example; "***" keeps a stored secret (the example never carries one).
_TENANT_EXAMPLE: Final = {
    "lucca": {
        "subdomain": "acme",
        "domain": "ilucca.net",
        "api_key": "***",
        "webhook_secret": "***",
    },
    "elevo": {"scim_url": "https://elevo.example/acme/scim/v2", "token": "***"},
    "skip_field": "e_skip_elevo_sync",
    "custom_fields": {"cost_center": "extendedData.e_cost_center", "site": "legalEntity.name"},
    "timezone": "Europe/Paris",
}
_TRIGGER_EXAMPLES: Final = {
    "full": {"value": {"mode": "full"}},
    "changes": {"value": {"mode": "changes", "dry_run": True}},
    "users": {"value": {"users": ["416", 417]}},
    "confirm": {"value": {"mode": "full", "confirm_suspensions": "20260101T020000-abcdef"}},
    "dismiss": {"value": {"dismiss": "20260101T020000-abcdef"}},
    "accept_skip_field_loss": {"value": {"accept_skip_field_loss": True}},
}


def _ref(struct: type[msgspec.Struct]) -> Schema:
    return {"$ref": _REF.format(name=struct.__name__)}


def _json(schema: Schema | type[msgspec.Struct], description: str) -> Schema:
    body = schema if isinstance(schema, dict) else _ref(schema)
    return {"description": description, "content": {"application/json": {"schema": body}}}


def _text(description: str) -> Schema:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _error(description: str, *codes: ErrorCode) -> Schema:
    only_these = {"type": "object", "properties": {"error": {"enum": [c.value for c in codes]}}}
    return _json({"allOf": [_ref(ErrorBody), only_these]}, description)


def _body(struct: type[msgspec.Struct], *, required: bool, **examples: Any) -> Schema:
    media: Schema = {"schema": _ref(struct), **({"examples": examples} if examples else {})}
    return {"required": required, "content": {"application/json": media}}


def _path_param(name: str, pattern: str | None, description: str, example: str) -> Schema:
    schema: Schema = {"type": "string", **({"pattern": pattern} if pattern else {})}
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
        "example": example,
    }


def _header(name: str, description: str) -> Schema:
    schema = {"type": "string"}
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": schema,
    }


_TENANT: Final = _path_param(
    "tenant",
    TENANT_PATTERN,
    "The tenant's name: 1 to 63 characters of a-z, 0-9 and '-', not starting with '-'.",
    "acme",
)
_UNAUTHORIZED: Final = {
    **_error(
        "Missing bearer token, or one that is wrong, revoked or expired.", ErrorCode.UNAUTHORIZED
    ),
    "headers": {
        "WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}, "required": True}
    },
}
_UNAVAILABLE: Final = _error(
    "Redis, which holds all state, is unreachable; retry.", ErrorCode.UNAVAILABLE
)
_UNREADABLE: Final = _error(
    "The stored config does not decrypt with any SECRETS_KEY key: an operator must act.",
    ErrorCode.TENANT_UNREADABLE,
)
_NO_TENANT: Final = _error(
    "No such tenant (or not a valid tenant name).", ErrorCode.UNKNOWN_TENANT, ErrorCode.NOT_FOUND
)
_BAD_BODY: Final = _error(
    "Not JSON, or not a valid body (the detail names the field, never a value).",
    ErrorCode.BAD_JSON,
    ErrorCode.INVALID_BODY,
)


_FORBIDDEN: Final = _error(
    "The token's scope does not allow this (the detail names the action or the setting).",
    ErrorCode.FORBIDDEN,
)


def _guarded(operation_id: str, action: Action, responses: Schema, **extra: Any) -> Schema:
    """An operation behind a bearer token: it may also answer 401, 403 and 503."""
    scopes = scopes_allowing(action)
    every = {"401": _UNAUTHORIZED, "403": _FORBIDDEN, "503": _UNAVAILABLE, **responses}
    return {
        "operationId": operation_id,
        "security": ADMIN if scopes == (Scope.ADMIN,) else ADMIN_OR_TENANT,
        "x-scopes": [scope.value for scope in scopes],
        **extra,
        "responses": every,
    }


def _health_paths() -> dict[str, Schema]:
    return {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "The process is up.",
                "responses": {"200": _json(Health, "Up: status ok.")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Redis is reachable.",
                "responses": {
                    "200": _json(Health, "Ready: status ready."),
                    "503": _json(Health, "Redis does not answer: status redis unreachable."),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (text exposition format); labels name tenants.",
                "security": ADMIN,
                "x-scopes": [Scope.ADMIN.value],
                "responses": {
                    "200": _text("The metrics."),
                    "401": _UNAUTHORIZED,
                    "403": _FORBIDDEN,
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This description.",
                "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
            }
        },
    }


_RELEASE: Final = {
    "name": "release",
    "in": "query",
    "required": False,
    "description": "true: give every managed profile back (remove syncSource) before deleting.",
    "schema": {"type": "string", "enum": ["true", "false"], "default": "false"},
}
_RELEASE_DESCRIPTION: Final = (
    "Plain: the config and the sync state go at once (204). With release=true (202): the tenant"
    " is disconnecting (its webhooks are acknowledged and ignored, runs are refused with 409)"
    " while a release run removes syncSource from every profile that has it, touching nothing"
    " else; then the config and the state go. A release that fails keeps the tenant, its"
    " status (GET /sync/{tenant} `disconnect`) saying why; asking again retries it."
)


def _tenant_paths() -> dict[str, Schema]:
    return {
        "/tenants": {
            "get": _guarded(
                "listTenants",
                Action.LIST_TENANTS,
                {"200": _json(TenantList, "Every tenant's name, sorted.")},
            )
        },
        "/tenants/{tenant}": {
            "parameters": [_TENANT],
            "get": _guarded(
                "getTenant",
                Action.READ_STATUS,
                {
                    "200": _json(TenantView, "The config, secrets redacted."),
                    "404": _NO_TENANT,
                    "500": _UNREADABLE,
                },
            ),
            "put": _guarded(
                "putTenant",
                Action.CONFIGURE,
                {
                    "200": _json(TenantView, "Replaced; the stored config."),
                    "201": _json(TenantView, "Created; the stored config."),
                    "400": _error(
                        "Not JSON, or not a valid config, or a destination changed without its"
                        " secret (the detail names the field, never a value).",
                        ErrorCode.BAD_JSON,
                        ErrorCode.INVALID_BODY,
                    ),
                    "404": _NO_TENANT,
                    "413": _text(f"Body over {TENANT_MAX_BODY_BYTES} bytes."),
                    "500": _UNREADABLE,
                },
                requestBody=_body(TenantBody, required=True, contract={"value": _TENANT_EXAMPLE}),
            ),
            "delete": _guarded(
                "deleteTenant",
                Action.DELETE_TENANT,
                {
                    "202": _json(
                        RunStarted,
                        "With release=true: the tenant is disconnecting; the release run (the"
                        " running one when a release runs already).",
                    ),
                    "204": {"description": "Deleted, with its sync state."},
                    "400": _error("`release` is neither true nor false.", ErrorCode.INVALID_BODY),
                    "404": _NO_TENANT,
                },
                parameters=[_RELEASE],
                description=_RELEASE_DESCRIPTION,
            ),
        },
        **_access_paths(),
    }


def _access_paths() -> dict[str, Schema]:
    token_id = _path_param(
        "token_id", f"^{TOKEN_ID_RE.pattern}$", "A token's id as issued.", "3f9a2b1c0d4e"
    )
    return {
        "/tenants/{tenant}/tokens": {
            "parameters": [_TENANT],
            "post": _guarded(
                "issueToken",
                Action.MANAGE_TOKENS,
                {
                    "201": _json(NewToken, "Issued; `token` is shown here and never again."),
                    "400": _BAD_BODY,
                    "404": _NO_TENANT,
                    "409": _error("The tenant holds the most tokens it may.", ErrorCode.CONFLICT),
                    "413": _text(f"Body over {TOKEN_MAX_BODY_BYTES} bytes."),
                },
                requestBody=_body(
                    TokenRequest,
                    required=True,
                    backend={"value": {"scope": "sync", "name": "elevo-backend"}},
                ),
            ),
            "get": _guarded(
                "listTokens",
                Action.MANAGE_TOKENS,
                {
                    "200": _json(TokenList, "The live tokens, never a token itself."),
                    "404": _NO_TENANT,
                },
            ),
        },
        "/tenants/{tenant}/tokens/{token_id}": {
            "parameters": [_TENANT, token_id],
            "delete": _guarded(
                "revokeToken",
                Action.MANAGE_TOKENS,
                {
                    "204": {"description": "Revoked: it stands for nobody from now on."},
                    "404": _error(
                        "No such tenant, or no such token (or it expired).",
                        ErrorCode.UNKNOWN_TENANT,
                        ErrorCode.UNKNOWN_TOKEN,
                        ErrorCode.NOT_FOUND,
                    ),
                },
            ),
        },
        "/tenants/{tenant}/webhook": {
            "parameters": [_TENANT],
            "post": _guarded(
                "registerWebhook",
                Action.CONFIGURE_SECRETS,
                {
                    "200": _json(WebhookRegistration, "The current endpoint is active: kept."),
                    "201": _json(WebhookRegistration, "A new endpoint registered in Lucca."),
                    "404": _NO_TENANT,
                    "409": _error(
                        "The tenant has no `lucca.oauth`, or the service no PUBLIC_URL.",
                        ErrorCode.CONFLICT,
                    ),
                },
                description=(
                    "Registers the tenant's webhook endpoint through Lucca's API with its OAuth "
                    "client, the topics the sync needs, and stores the secret Lucca shows once "
                    "(never answered). Lucca's refusals are in `webhook.error`."
                ),
            ),
        },
        "/tenants/{tenant}/audit": {
            "parameters": [_TENANT],
            "get": _guarded(
                "tenantAudit",
                Action.READ_STATUS,
                {
                    "200": _json(AuditLog, "Who changed the tenant, newest first."),
                    "404": _NO_TENANT,
                },
            ),
        },
        "/tenants/{tenant}/pause": {
            "parameters": [_TENANT],
            "post": _guarded(
                "pauseTenant",
                Action.PAUSE,
                {
                    "200": _json(TenantPaused, "Paused: every notice is kept, nothing written."),
                    "400": _BAD_BODY,
                    "404": _NO_TENANT,
                    "413": _text(f"Body over {PAUSE_MAX_BODY_BYTES} bytes."),
                },
                description=_PAUSE_DESCRIPTION,
                requestBody=_body(PauseBody, required=False, why={"value": {"reason": "audit"}}),
            ),
        },
        "/tenants/{tenant}/resume": {
            "parameters": [_TENANT],
            "post": _guarded(
                "resumeTenant",
                Action.PAUSE,
                {
                    "200": _json(TenantResumed, "Resumed: what was kept is applied now."),
                    "404": _NO_TENANT,
                    "413": _text(f"Body over {PAUSE_MAX_BODY_BYTES} bytes."),
                },
            ),
        },
    }


_PAUSE_DESCRIPTION: Final = (
    "While paused, every change notice is kept (each employee's history says it waits) and"
    " nothing is written; full runs and polls asked meanwhile (nightly ones included) are held"
    " and one of each mode starts on resume; a confirmation of a held run is a 409; dry runs"
    " run as usual. GET /sync/{tenant} shows `paused` (since, by) and `waiting`."
)


_WEBHOOK_DESCRIPTION: Final = (
    "The raw body is signed: Lucca-Signature = base64(HMAC-SHA256(secret, Lucca-Timestamp + '.' "
    "+ body)), the timestamp within 5 minutes of now; every active secret of the tenant is "
    "tried. Nothing is queued unless the signature holds; an event id seen in the last 7 days "
    "answers 202 duplicate (an event whose id is missing, not a string or integer, or over 128 "
    "characters is recognised by the SHA-256 of its body). The tenant is looked up before the "
    "body is read. Beyond the tenant's ingest rate (WEBHOOK_EVENTS_PER_MINUTE) an event answers "
    "202 coalesced: its employees are synced together a few seconds later."
)
_SLOW_BODY: Final = _error(
    "The body did not arrive within REQUEST_BODY_TIMEOUT_SECONDS.", ErrorCode.REQUEST_TIMEOUT
)


def _webhook_paths() -> dict[str, Schema]:
    event = {"schema": _ref(LuccaEvent)}
    activate = {
        "operationId": "activateWebhook",
        "summary": "Lucca's activation: echoes `echo` (or `challenge`).",
        "description": "The tenant is not looked up: any name answers the echo.",
        "parameters": [
            _path_param("tenant", None, "Any name.", "acme"),
            {"name": "echo", "in": "query", "schema": {"type": "string"}},
            {"name": "challenge", "in": "query", "schema": {"type": "string"}},
        ],
        "responses": {
            "200": _text("The value, echoed."),
            "400": _text("Neither echo nor challenge was given."),
        },
    }
    receive = {
        "operationId": "receiveWebhook",
        "summary": "A Lucca change notification.",
        "description": _WEBHOOK_DESCRIPTION,
        "parameters": [
            _TENANT,
            _header("Lucca-Timestamp", "ISO 8601 time of this attempt."),
            _header("Lucca-Signature", "base64 HMAC-SHA256 of timestamp.body."),
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": event, "application/cloudevents+json": event},
        },
        "responses": {
            "202": _json(
                WebhookAccepted,
                "Queued, ignored (an irrelevant topic, or a tenant that is disconnecting), a"
                " duplicate, or coalesced (past the ingest rate).",
            ),
            "400": _error(
                "Signed, but not a JSON object (or cut short).",
                ErrorCode.BAD_JSON,
                ErrorCode.DISCONNECTED,
            ),
            "401": _error("Missing, wrong, stale or future signature.", ErrorCode.BAD_SIGNATURE),
            "404": _NO_TENANT,
            "408": _SLOW_BODY,
            "413": _error(f"Body over {WEBHOOK_MAX_BODY_BYTES} bytes.", ErrorCode.TOO_LARGE),
            "415": _error("Not application/json.", ErrorCode.UNSUPPORTED_MEDIA_TYPE),
            "503": _error(
                "Redis is unreachable or the tenant's config is unreadable: Lucca retries "
                "(never 404/410 for a tenant that may exist).",
                ErrorCode.UNAVAILABLE,
            ),
        },
    }
    return {"/webhooks/lucca/{tenant}": {"get": activate, "post": receive}}


def _sync_paths() -> dict[str, Schema]:
    run_id = _path_param(
        "run_id", RUN_ID_PATTERN, "A run id as POST /sync answered it.", "20260101T000000-abcdef"
    )
    user_id = _path_param(
        "user_id",
        USER_ID_PATTERN,
        "A Lucca user id: ASCII digits, at most 18 once leading zeros are dropped.",
        "416",
    )
    no_run = _error(
        "No such tenant, or no such run (or it expired).",
        ErrorCode.UNKNOWN_TENANT,
        ErrorCode.UNKNOWN_RUN,
        ErrorCode.NOT_FOUND,
    )
    return {
        "/sync/{tenant}": {
            "parameters": [_TENANT],
            "post": _guarded(
                "triggerSync",
                Action.START_RUN,
                {
                    "202": _json(
                        RunStarted,
                        "The run (the running one for a full run; the dismissed one for a"
                        " dismissal).",
                    ),
                    "400": _BAD_BODY,
                    "404": _error(
                        "No such tenant, or the held run to confirm or dismiss is unknown.",
                        ErrorCode.UNKNOWN_TENANT,
                        ErrorCode.UNKNOWN_RUN,
                        ErrorCode.NOT_FOUND,
                    ),
                    "408": _SLOW_BODY,
                    "409": _error(
                        "A confirmation while a full run runs, or of a run not held or resolved"
                        " already (superseded, confirmed, dismissed), or while the tenant is"
                        " paused; any run while the tenant is disconnecting (its release runs);"
                        " the detail names the run.",
                        ErrorCode.CONFLICT,
                    ),
                    "413": _error(f"Body over {MAX_BODY_BYTES} bytes.", ErrorCode.TOO_LARGE),
                },
                requestBody=_body(SyncTrigger, required=False, **_TRIGGER_EXAMPLES),
                description=(
                    "`confirm_suspensions`, `dismiss` and `accept_skip_field_loss` resolve a held"
                    " run: a `sync` token gets a 403 naming `resolve_held`."
                ),
            ),
            "get": _guarded(
                "syncStatus",
                Action.READ_STATUS,
                {"200": _json(SyncStatus, "The tenant's sync status."), "404": _NO_TENANT},
            ),
        },
        "/sync/{tenant}/runs/{run_id}": {
            "parameters": [_TENANT, run_id],
            "get": _guarded(
                "getRun", Action.READ_RUNS, {"200": _json(RunDocument, "The run."), "404": no_run}
            ),
        },
        "/sync/{tenant}/users/{user_id}": {
            "parameters": [_TENANT, user_id],
            "get": _guarded(
                "userHistory",
                Action.READ_STATUS,
                {
                    "200": _json(UserHistory, "Every decision and write, newest first."),
                    "400": _error(
                        "The user id is not a positive integer of at most 18 digits.",
                        ErrorCode.BAD_USER,
                    ),
                    "404": _NO_TENANT,
                },
            ),
        },
    }


def _schemas() -> dict[str, Schema]:
    _, components = msgspec.json.schema_components(_COMPONENTS, ref_template=_REF)
    # What msgspec cannot say: a trigger holds users or a mode, never both.
    components["SyncTrigger"]["not"] = {"required": ["users", "mode"]}
    return components


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (built once; callers must not mutate it)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Lucca -> Elevo sync",
            "version": "0.1.0",
            "description": (
                "Near-real-time sync of Lucca employees into Elevo profiles (SCIM). "
                "Errors answer {error, detail}; no answer ever carries a secret."
            ),
        },
        "paths": {**_health_paths(), **_tenant_paths(), **_webhook_paths(), **_sync_paths()},
        "components": {
            "securitySchemes": {
                "adminBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "ADMIN_TOKEN: every route, every tenant.",
                },
                "tenantBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "A tenant token (`les_...`, POST /tenants/{tenant}/tokens), of its one"
                        " tenant: scope `sync` starts runs and reads them; scope `operator` also"
                        " reads the tenant's status, histories, config and audit, resolves held"
                        " runs and changes settings other than secrets and destinations. Each"
                        " operation's `x-scopes` lists the scopes it admits; another tenant's"
                        " answers 404 as an unknown one does."
                    ),
                },
            },
            "schemas": _schemas(),
        },
    }

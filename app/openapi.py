"""The service's OpenAPI 3.1 description, served at `GET /openapi.json`.

It describes every route of `app.main.create_app` (tests/security/test_openapi.py keeps the two
in step, and schemathesis checks every answer against it): request bodies, every status each
route answers on purpose, and the shape of each answer. Errors are `{"error": <code>, "detail":
<sentence>}`; each error response lists the codes it can carry.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final

from app.core.decision import Action
from app.core.events import NoticeKind
from app.core.tenant import LUCCA_DOMAINS
from app.routes.sync import MAX_USERS_PER_REQUEST
from app.routes.tenants import MAX_BODY_BYTES as TENANT_MAX_BODY_BYTES
from app.routes.webhooks import MAX_BODY_BYTES as WEBHOOK_MAX_BODY_BYTES
from app.tenants import (
    MAX_CUSTOM_FIELDS,
    MAX_LUCCA_REQUESTS_PER_MINUTE,
    MAX_POLL_INTERVAL_SECONDS,
    MAX_SECRET_LENGTH,
    MIN_POLL_INTERVAL_SECONDS,
)

Schema = dict[str, Any]

TENANT_PATTERN: Final = "^[a-z0-9][a-z0-9-]{0,62}$"
SUBDOMAIN_PATTERN: Final = "^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
USER_ID_PATTERN: Final = "^0*[1-9][0-9]*$"
RUN_ID_PATTERN: Final = "^[0-9]{8}T[0-9]{6}-[0-9a-f]{6}$"
# No control character (they would end up in HTTP headers); the service also refuses a value
# made of spaces only.
SECRET_PATTERN: Final = "^[^\\x00-\\x1f\\x7f]*$"  # noqa: S105 - a regex, not a secret
REDACTED_VALUE: Final = "***"
RUN_STATES: Final = ("queued", "running", "done", "failed", "held")

_REF = "#/components/schemas/"
ADMIN: Final[list[dict[str, list[str]]]] = [{"adminBearer": []}]


def _ref(name: str) -> Schema:
    return {"$ref": _REF + name}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(description: str) -> Schema:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _error(description: str, *codes: str) -> Schema:
    schema: Schema = {
        "allOf": [
            _ref("Error"),
            {"type": "object", "properties": {"error": {"enum": list(codes)}}},
        ]
    }
    return _json(schema, description)


_UNAUTHORIZED: Final = {
    **_error("Missing or wrong admin bearer token.", "unauthorized"),
    "headers": {
        "WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}, "required": True}
    },
}
_UNAVAILABLE: Final = _error("Redis, which holds all state, is unreachable; retry.", "unavailable")
_UNREADABLE: Final = _error(
    "The stored config does not decrypt with any SECRETS_KEY key: an operator must act.",
    "tenant_unreadable",
)
_UNKNOWN_TENANT: Final = _error("No such tenant.", "unknown_tenant", "not_found")


# The contract's example; "***" keeps a stored secret (the example never carries one).
_TENANT_EXAMPLE: Final = {
    "lucca": {
        "subdomain": "acme",
        "domain": "ilucca.net",
        "api_key": REDACTED_VALUE,
        "webhook_secret": REDACTED_VALUE,
    },
    "elevo": {"scim_url": "https://elevo.example/acme/scim/v2", "token": REDACTED_VALUE},
    "skip_field": "e_skip_elevo_sync",
    "custom_fields": {"cost_center": "extendedData.e_cost_center", "site": "legalEntity.name"},
    "timezone": "Europe/Paris",
}


def _path_param(name: str, schema: Schema, description: str, example: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
        "example": example,
    }


_TENANT_PARAM: Final = _path_param(
    "tenant",
    {"type": "string", "pattern": TENANT_PATTERN},
    "The tenant's name: 1 to 63 characters of a-z, 0-9 and '-', not starting with '-'.",
    "acme",
)


def _schemas() -> dict[str, Schema]:
    secret: Schema = {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_SECRET_LENGTH,
        "pattern": SECRET_PATTERN,
        "writeOnly": True,
        "description": 'A credential; "***" (what a GET shows) or omitted keeps the stored one.',
    }
    redacted: Schema = {"type": "string", "const": REDACTED_VALUE}
    field_path: Schema = {
        "type": "string",
        "pattern": "^[A-Za-z_][A-Za-z0-9_]*(?:\\.[A-Za-z_][A-Za-z0-9_]*){0,7}$",
        "description": "A Lucca v3 field path, e.g. 'extendedData.e_cost_center'.",
    }
    custom_fields: Schema = {
        "type": "object",
        "maxProperties": MAX_CUSTOM_FIELDS,
        "propertyNames": {"minLength": 1, "maxLength": 128, "pattern": '^[^"\\\\]+$'},
        "additionalProperties": field_path,
        "description": "Elevo custom field name -> Lucca v3 field path.",
    }
    guard_in: Schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "max_suspend_ratio": _nullable({"type": "number", "minimum": 0, "maximum": 1}),
            "max_suspend_count": _nullable({"type": "integer", "minimum": 0}),
        },
    }
    common_in: dict[str, Schema] = {
        "skip_field": _nullable({"type": "string", "pattern": "^[A-Za-z0-9_]{1,100}$"}),
        "custom_fields": _nullable(custom_fields),
        "timezone": _nullable({"type": "string", "description": "An IANA time zone."}),
        "nightly_at": _nullable({"type": "string", "pattern": "^(?:[01][0-9]|2[0-3]):[0-5][0-9]$"}),
        "guard": _nullable(guard_in),
        "lucca_requests_per_minute": _nullable(
            {"type": "integer", "minimum": 1, "maximum": MAX_LUCCA_REQUESTS_PER_MINUTE}
        ),
        "poll_interval_seconds": _nullable(
            {
                "type": "integer",
                "minimum": MIN_POLL_INTERVAL_SECONDS,
                "maximum": MAX_POLL_INTERVAL_SECONDS,
            }
        ),
    }
    tenant_in: Schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["lucca", "elevo"],
        "description": (
            "lucca.api_key and elevo.token are required when the tenant is created; "
            "an omitted secret keeps its stored value."
        ),
        "properties": {
            "lucca": {
                "type": "object",
                "additionalProperties": False,
                "required": ["subdomain"],
                "properties": {
                    "subdomain": {
                        "type": "string",
                        "pattern": SUBDOMAIN_PATTERN,
                        "description": "One lowercase DNS label, never a URL or a host (SSRF).",
                    },
                    "domain": _nullable({"type": "string", "enum": list(LUCCA_DOMAINS)}),
                    "api_key": secret,
                    "webhook_secret": {
                        "anyOf": [
                            secret,
                            {"type": "array", "items": secret, "uniqueItems": True},
                            {"type": "null"},
                        ],
                        "description": "One secret or several (rotation); null removes them.",
                    },
                },
            },
            "elevo": {
                "type": "object",
                "additionalProperties": False,
                "required": ["scim_url"],
                "properties": {
                    "scim_url": {
                        "type": "string",
                        "pattern": "^[hH][tT][tT][pP][sS]?://",
                        "description": (
                            "Absolute https URL with a host and no user info, query or fragment "
                            "(http only with ALLOW_HTTP_ELEVO)."
                        ),
                    },
                    "token": secret,
                },
            },
            **common_in,
        },
    }
    tenant_view: Schema = {
        "type": "object",
        "required": ["lucca", "elevo", "skip_field", "custom_fields", "timezone"],
        "properties": {
            "lucca": {
                "type": "object",
                "required": ["subdomain", "domain", "api_key", "webhook_secret"],
                "properties": {
                    "subdomain": {"type": "string", "pattern": SUBDOMAIN_PATTERN},
                    "domain": {"type": "string", "enum": list(LUCCA_DOMAINS)},
                    "api_key": redacted,
                    "webhook_secret": {
                        "anyOf": [redacted, {"type": "array", "items": redacted}, {"type": "null"}]
                    },
                },
            },
            "elevo": {
                "type": "object",
                "required": ["scim_url", "token"],
                "properties": {"scim_url": {"type": "string"}, "token": redacted},
            },
            "skip_field": {"type": "string"},
            "custom_fields": {"type": "object", "additionalProperties": {"type": "string"}},
            "timezone": {"type": "string"},
            "nightly_at": {"type": "string"},
            "guard": {
                "type": "object",
                "properties": {
                    "max_suspend_ratio": {"type": "number"},
                    "max_suspend_count": {"type": "integer"},
                },
            },
            "lucca_requests_per_minute": {"type": "integer"},
            "poll_interval_seconds": _nullable({"type": "integer"}),
        },
        "description": 'The stored config, every secret shown as "***".',
    }
    user_id: Schema = {
        "anyOf": [
            {"type": "integer", "minimum": 1},
            {"type": "string", "pattern": USER_ID_PATTERN},
        ]
    }
    trigger: Schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "mode": {"type": "string", "enum": ["full", "changes"]},
            "users": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_USERS_PER_REQUEST,
                "items": user_id,
            },
            "dry_run": {"type": "boolean"},
            "confirm_suspensions": {
                "type": "boolean",
                "description": "Releases the suspensions a safety guard holds; mode full only.",
            },
        },
        "not": {"required": ["users", "mode"]},
        "description": "{} is a full reconciliation; users and mode exclude each other.",
    }
    plan_entry: Schema = {
        "type": "object",
        "required": ["user", "action"],
        "properties": {
            "user": {"type": "string"},
            "action": {"type": "string", "enum": [a.value for a in Action]},
            "reason": {"type": ["string", "null"]},
            "diff": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["old", "new"],
                    "properties": {"old": {}, "new": {}},
                },
            },
            "at": {"type": "string"},
            "run": {"type": ["string", "null"]},
            "written": {"type": "boolean"},
            "dry_run": {"type": "boolean"},
            "error": {"type": "string"},
        },
    }
    run: Schema = {
        "type": "object",
        "required": ["id", "state", "mode", "trigger", "counts", "processed", "dry_run", "errors"],
        "properties": {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": list(RUN_STATES)},
            "mode": {"type": "string"},
            "trigger": {"type": "string"},
            "created_at": {"type": "string"},
            "started_at": {"type": "string"},
            "finished_at": {"type": "string"},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "processed": {"type": "integer", "minimum": 0},
            "expected": {"type": "integer", "minimum": 0},
            "dry_run": {"type": "boolean"},
            "errors": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
            "plan": {"type": "array", "items": _ref("PlanEntry")},
        },
        "description": "A run: its state, counts per action and, for a dry run, its plan.",
    }
    status: Schema = {
        "type": "object",
        "required": [
            "tenant",
            "last_event_at",
            "last_full_run_at",
            "queue_depth",
            "safety_guard",
            "failing_users",
            "runs",
        ],
        "properties": {
            "tenant": {"type": "string"},
            "last_event_at": {"type": ["string", "null"]},
            "last_full_run_at": {"type": ["string", "null"]},
            "queue_depth": {"type": "integer", "minimum": 0},
            "safety_guard": {
                "type": "object",
                "required": ["holding", "run", "users"],
                "properties": {
                    "holding": {"type": "boolean"},
                    "run": {"type": ["string", "null"]},
                    "users": {"type": "array"},
                },
            },
            "permission_loss": {"type": ["string", "null"]},
            "lucca_key_error": {"type": ["string", "null"]},
            "elevo_token_error": {"type": ["string", "null"]},
            "last_poll_at": {"type": ["string", "null"]},
            "failing_users": {"type": "object", "additionalProperties": _ref("PlanEntry")},
            "runs": {"type": "array", "items": _ref("Run")},
        },
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error", "detail"],
            "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
        },
        "TenantConfigIn": tenant_in,
        "TenantConfig": tenant_view,
        "TenantList": {
            "type": "object",
            "required": ["tenants"],
            "properties": {
                "tenants": {"type": "array", "items": {"type": "string", "pattern": TENANT_PATTERN}}
            },
        },
        "LuccaEvent": {
            "type": "object",
            "description": (
                "A Lucca webhook event ({id, topic, data, ...}); any JSON object is accepted once "
                "signed: an unexpected `data` is recorded and triggers a changes poll."
            ),
        },
        "WebhookAccepted": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"enum": [k.value for k in NoticeKind] + ["duplicate"]},
                "run": {"type": ["string", "null"]},
                "reason": {"type": ["string", "null"]},
            },
        },
        "SyncTrigger": trigger,
        "RunStarted": {
            "type": "object",
            "required": ["run"],
            "properties": {"run": {"type": "string"}},
        },
        "PlanEntry": plan_entry,
        "Run": run,
        "SyncStatus": status,
        "UserHistory": {
            "type": "object",
            "required": ["tenant", "user", "history"],
            "properties": {
                "tenant": {"type": "string"},
                "user": {"type": "string"},
                "history": {"type": "array", "items": _ref("PlanEntry")},
            },
        },
    }


def _health_paths() -> dict[str, Schema]:
    return {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "The process is up.",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["status"],
                            "properties": {"status": {"const": "ok"}},
                        },
                        "Up.",
                    )
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Redis is reachable.",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["status"],
                            "properties": {"status": {"const": "ready"}},
                        },
                        "Ready.",
                    ),
                    "503": _json(
                        {
                            "type": "object",
                            "required": ["status"],
                            "properties": {"status": {"const": "redis unreachable"}},
                        },
                        "Redis does not answer.",
                    ),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (text exposition format); labels name tenants.",
                "security": ADMIN,
                "responses": {"200": _text("The metrics."), "401": _UNAUTHORIZED},
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


def _tenant_paths() -> dict[str, Schema]:
    bad_name = _error("The tenant name is not a valid name.", "invalid_tenant")
    return {
        "/tenants": {
            "get": {
                "operationId": "listTenants",
                "security": ADMIN,
                "responses": {
                    "200": _json(_ref("TenantList"), "Every tenant's name, sorted."),
                    "401": _UNAUTHORIZED,
                    "503": _UNAVAILABLE,
                },
            }
        },
        "/tenants/{tenant}": {
            "parameters": [_TENANT_PARAM],
            "get": {
                "operationId": "getTenant",
                "security": ADMIN,
                "responses": {
                    "200": _json(_ref("TenantConfig"), "The config, secrets redacted."),
                    "400": bad_name,
                    "401": _UNAUTHORIZED,
                    "404": _UNKNOWN_TENANT,
                    "500": _UNREADABLE,
                    "503": _UNAVAILABLE,
                },
            },
            "put": {
                "operationId": "putTenant",
                "security": ADMIN,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _ref("TenantConfigIn"),
                            "examples": {"contract": {"value": _TENANT_EXAMPLE}},
                        }
                    },
                },
                "responses": {
                    "200": _json(_ref("TenantConfig"), "Replaced; the stored config."),
                    "201": _json(_ref("TenantConfig"), "Created; the stored config."),
                    "400": _error(
                        "Invalid name, JSON or config (the detail names the field, never a value).",
                        "invalid_tenant",
                        "invalid_json",
                        "invalid_config",
                    ),
                    "401": _UNAUTHORIZED,
                    "413": _text(f"Body over {TENANT_MAX_BODY_BYTES} bytes."),
                    "500": _UNREADABLE,
                    "503": _UNAVAILABLE,
                },
            },
            "delete": {
                "operationId": "deleteTenant",
                "security": ADMIN,
                "responses": {
                    "204": {"description": "Deleted."},
                    "400": bad_name,
                    "401": _UNAUTHORIZED,
                    "404": _UNKNOWN_TENANT,
                    "503": _UNAVAILABLE,
                },
            },
        },
    }


def _webhook_paths() -> dict[str, Schema]:
    def header(name: str, description: str) -> Schema:
        return {
            "name": name,
            "in": "header",
            "required": True,
            "description": description,
            "schema": {"type": "string"},
        }

    return {
        "/webhooks/lucca/{tenant}": {
            "get": {
                "operationId": "activateWebhook",
                "summary": "Lucca's activation: echoes `echo` (or `challenge`).",
                "description": "The tenant is not looked up: any name answers the echo.",
                "parameters": [
                    _path_param("tenant", {"type": "string"}, "Any name.", "acme"),
                    {"name": "echo", "in": "query", "schema": {"type": "string"}},
                    {"name": "challenge", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _text("The value, echoed."),
                    "400": _text("Neither echo nor challenge was given."),
                },
            },
            "post": {
                "operationId": "receiveWebhook",
                "summary": "A Lucca change notification.",
                "description": (
                    "The raw body is signed: Lucca-Signature = base64(HMAC-SHA256(secret, "
                    "Lucca-Timestamp + '.' + body)), the timestamp within 5 minutes of now; every "
                    "active secret of the tenant is tried. Nothing is queued unless the signature "
                    "holds; an event id seen in the last 7 days answers 202 duplicate."
                ),
                "parameters": [
                    _TENANT_PARAM,
                    header("Lucca-Timestamp", "ISO 8601 time of this attempt."),
                    header("Lucca-Signature", "base64 HMAC-SHA256 of timestamp.body."),
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _ref("LuccaEvent")},
                        "application/cloudevents+json": {"schema": _ref("LuccaEvent")},
                    },
                },
                "responses": {
                    "202": _json(
                        _ref("WebhookAccepted"), "Queued, ignored as irrelevant, or a duplicate."
                    ),
                    "400": _error(
                        "Signed, but not a JSON object (or cut short).", "bad_json", "disconnected"
                    ),
                    "401": _error("Missing, wrong, stale or future signature.", "bad_signature"),
                    "404": _UNKNOWN_TENANT,
                    "413": _error(f"Body over {WEBHOOK_MAX_BODY_BYTES} bytes.", "too_large"),
                    "415": _error("Not application/json.", "unsupported_media_type"),
                    "503": _error(
                        "Redis is unreachable or the tenant's config is unreadable: Lucca retries "
                        "(never 404/410 for a tenant that may exist).",
                        "unavailable",
                    ),
                },
            },
        },
    }


def _sync_paths() -> dict[str, Schema]:
    not_found = _error("No such tenant.", "unknown_tenant", "not_found")
    return {
        "/sync/{tenant}": {
            "parameters": [_TENANT_PARAM],
            "post": {
                "operationId": "triggerSync",
                "security": ADMIN,
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": _ref("SyncTrigger"),
                            "examples": {
                                "full": {"value": {"mode": "full"}},
                                "changes": {"value": {"mode": "changes", "dry_run": True}},
                                "users": {"value": {"users": ["416", 417]}},
                                "release": {"value": {"mode": "full", "confirm_suspensions": True}},
                            },
                        }
                    },
                },
                "responses": {
                    "202": _json(_ref("RunStarted"), "The run (the running one for a full run)."),
                    "400": _error("Not JSON, or an invalid trigger.", "bad_json", "bad_request"),
                    "401": _UNAUTHORIZED,
                    "404": not_found,
                    "503": _UNAVAILABLE,
                },
            },
            "get": {
                "operationId": "syncStatus",
                "security": ADMIN,
                "responses": {
                    "200": _json(_ref("SyncStatus"), "The tenant's sync status."),
                    "401": _UNAUTHORIZED,
                    "404": not_found,
                    "503": _UNAVAILABLE,
                },
            },
        },
        "/sync/{tenant}/runs/{run_id}": {
            "parameters": [
                _TENANT_PARAM,
                _path_param(
                    "run_id",
                    {"type": "string", "pattern": RUN_ID_PATTERN},
                    "A run id as POST /sync answered it.",
                    "20260101T000000-abcdef",
                ),
            ],
            "get": {
                "operationId": "getRun",
                "security": ADMIN,
                "responses": {
                    "200": _json(_ref("Run"), "The run."),
                    "401": _UNAUTHORIZED,
                    "404": _error(
                        "No such tenant, or no such run (or it expired).",
                        "unknown_tenant",
                        "unknown_run",
                        "not_found",
                    ),
                    "503": _UNAVAILABLE,
                },
            },
        },
        "/sync/{tenant}/users/{user_id}": {
            "parameters": [
                _TENANT_PARAM,
                _path_param(
                    "user_id",
                    {"type": "string", "pattern": USER_ID_PATTERN},
                    "A Lucca user id.",
                    "416",
                ),
            ],
            "get": {
                "operationId": "userHistory",
                "security": ADMIN,
                "responses": {
                    "200": _json(_ref("UserHistory"), "Every decision and write, newest first."),
                    "400": _error("The user id is not a positive integer.", "bad_user"),
                    "401": _UNAUTHORIZED,
                    "404": not_found,
                    "503": _UNAVAILABLE,
                },
            },
        },
    }


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
        "paths": {
            **_health_paths(),
            **_tenant_paths(),
            **_webhook_paths(),
            **_sync_paths(),
        },
        "components": {
            "securitySchemes": {
                "adminBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "ADMIN_TOKEN, for /tenants/* and /sync/*.",
                }
            },
            "schemas": _schemas(),
        },
    }

"""Everything under /tenants: the configs, the tokens, the webhook registration, the audit
log, pause and resume."""

from __future__ import annotations

from typing import Final

from app.api.errors import ErrorCode
from app.api.openapi_paths.common import (
    BAD_BODY,
    NO_TENANT,
    TENANT_PARAM,
    UNREADABLE,
    Schema,
    error_response,
    guarded,
    json_response,
    path_param,
    request_body,
    text_response,
)
from app.api.responses import (
    AuditLog,
    NewToken,
    RunStarted,
    TenantList,
    TenantPaused,
    TenantResumed,
    TokenList,
    WebhookRegistration,
)
from app.api.routes.access import MAX_BODY_BYTES as TOKEN_MAX_BODY_BYTES
from app.api.routes.tenants import MAX_BODY_BYTES as TENANT_MAX_BODY_BYTES
from app.api.routes.tenants import PAUSE_MAX_BODY_BYTES
from app.api.schemas import PauseBody, TokenRequest
from app.schemas.tenant import TenantBody, TenantView
from app.service.access import TOKEN_ID_RE, Action

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
_PAUSE_DESCRIPTION: Final = (
    "While paused, every change notice is kept (each employee's history says it waits) and"
    " nothing is written; full runs and polls asked meanwhile (nightly ones included) are held"
    " and one of each mode starts on resume; a confirmation of a held run is a 409; dry runs"
    " run as usual. GET /sync/{tenant} shows `paused` (since, by) and `waiting`."
)


def tenant_paths() -> dict[str, Schema]:
    return {
        "/tenants": {
            "get": guarded(
                "listTenants",
                Action.LIST_TENANTS,
                {"200": json_response(TenantList, "Every tenant's name, sorted.")},
            )
        },
        "/tenants/{tenant}": {
            "parameters": [TENANT_PARAM],
            "get": guarded(
                "getTenant",
                Action.READ_STATUS,
                {
                    "200": json_response(TenantView, "The config, secrets redacted."),
                    "404": NO_TENANT,
                    "500": UNREADABLE,
                },
            ),
            "put": _put_tenant(),
            "delete": _delete_tenant(),
        },
        **_token_paths(),
        "/tenants/{tenant}/webhook": {"parameters": [TENANT_PARAM], "post": _register_webhook()},
        "/tenants/{tenant}/audit": {
            "parameters": [TENANT_PARAM],
            "get": guarded(
                "tenantAudit",
                Action.READ_STATUS,
                {
                    "200": json_response(AuditLog, "Who changed the tenant, newest first."),
                    "404": NO_TENANT,
                },
            ),
        },
        **_pause_paths(),
    }


def _put_tenant() -> Schema:
    return guarded(
        "putTenant",
        Action.CONFIGURE,
        {
            "200": json_response(TenantView, "Replaced; the stored config."),
            "201": json_response(TenantView, "Created; the stored config."),
            "400": error_response(
                "Not JSON, or not a valid config, or a destination changed without its"
                " secret (the detail names the field, never a value).",
                ErrorCode.BAD_JSON,
                ErrorCode.INVALID_BODY,
            ),
            "404": NO_TENANT,
            "413": text_response(f"Body over {TENANT_MAX_BODY_BYTES} bytes."),
            "500": UNREADABLE,
        },
        requestBody=request_body(TenantBody, required=True, contract={"value": _TENANT_EXAMPLE}),
    )


def _delete_tenant() -> Schema:
    return guarded(
        "deleteTenant",
        Action.DELETE_TENANT,
        {
            "202": json_response(
                RunStarted,
                "With release=true: the tenant is disconnecting; the release run (the"
                " running one when a release runs already).",
            ),
            "204": {"description": "Deleted, with its sync state."},
            "400": error_response("`release` is neither true nor false.", ErrorCode.INVALID_BODY),
            "404": NO_TENANT,
        },
        parameters=[_RELEASE],
        description=_RELEASE_DESCRIPTION,
    )


def _token_paths() -> dict[str, Schema]:
    token_id = path_param(
        "token_id", f"^{TOKEN_ID_RE.pattern}$", "A token's id as issued.", "3f9a2b1c0d4e"
    )
    return {
        "/tenants/{tenant}/tokens": {
            "parameters": [TENANT_PARAM],
            "post": _issue_token(),
            "get": guarded(
                "listTokens",
                Action.MANAGE_TOKENS,
                {
                    "200": json_response(TokenList, "The live tokens, never a token itself."),
                    "404": NO_TENANT,
                },
            ),
        },
        "/tenants/{tenant}/tokens/{token_id}": {
            "parameters": [TENANT_PARAM, token_id],
            "delete": guarded(
                "revokeToken",
                Action.MANAGE_TOKENS,
                {
                    "204": {"description": "Revoked: it stands for nobody from now on."},
                    "404": error_response(
                        "No such tenant, or no such token (or it expired).",
                        ErrorCode.UNKNOWN_TENANT,
                        ErrorCode.UNKNOWN_TOKEN,
                        ErrorCode.NOT_FOUND,
                    ),
                },
            ),
        },
    }


def _issue_token() -> Schema:
    return guarded(
        "issueToken",
        Action.MANAGE_TOKENS,
        {
            "201": json_response(NewToken, "Issued; `token` is shown here and never again."),
            "400": BAD_BODY,
            "404": NO_TENANT,
            "409": error_response("The tenant holds the most tokens it may.", ErrorCode.CONFLICT),
            "413": text_response(f"Body over {TOKEN_MAX_BODY_BYTES} bytes."),
        },
        requestBody=request_body(
            TokenRequest,
            required=True,
            backend={"value": {"scope": "sync", "name": "elevo-backend"}},
        ),
    )


def _register_webhook() -> Schema:
    return guarded(
        "registerWebhook",
        Action.CONFIGURE_SECRETS,
        {
            "200": json_response(WebhookRegistration, "The current endpoint is active: kept."),
            "201": json_response(WebhookRegistration, "A new endpoint registered in Lucca."),
            "404": NO_TENANT,
            "409": error_response(
                "The tenant has no `lucca.oauth`, or the service no PUBLIC_URL.",
                ErrorCode.CONFLICT,
            ),
        },
        description=(
            "Registers the tenant's webhook endpoint through Lucca's API with its OAuth "
            "client, the topics the sync needs, and stores the secret Lucca shows once "
            "(never answered). Lucca's refusals are in `webhook.error`."
        ),
    )


def _pause_paths() -> dict[str, Schema]:
    return {
        "/tenants/{tenant}/pause": {
            "parameters": [TENANT_PARAM],
            "post": guarded(
                "pauseTenant",
                Action.PAUSE,
                {
                    "200": json_response(
                        TenantPaused, "Paused: every notice is kept, nothing written."
                    ),
                    "400": BAD_BODY,
                    "404": NO_TENANT,
                    "413": text_response(f"Body over {PAUSE_MAX_BODY_BYTES} bytes."),
                },
                description=_PAUSE_DESCRIPTION,
                requestBody=request_body(
                    PauseBody, required=False, why={"value": {"reason": "audit"}}
                ),
            ),
        },
        "/tenants/{tenant}/resume": {
            "parameters": [TENANT_PARAM],
            "post": guarded(
                "resumeTenant",
                Action.PAUSE,
                {
                    "200": json_response(TenantResumed, "Resumed: what was kept is applied now."),
                    "404": NO_TENANT,
                    "413": text_response(f"Body over {PAUSE_MAX_BODY_BYTES} bytes."),
                },
            ),
        },
    }

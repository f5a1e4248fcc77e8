"""The service's OpenAPI 3.1 description, served at `GET /openapi.json`.

The schemas are generated from the Structs of app/api/schemas.py and app/api/responses.py; only
the paths, their parameters and their responses are written by hand, in app/api/openapi_paths/.
tests/security/test_openapi.py keeps the paths in step with the app's routes, and schemathesis
checks every answer against the document. Each error response lists the `ErrorCode`s it can
carry.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final

import msgspec

from app.api.openapi_paths.common import SCHEMA_REF, Schema
from app.api.openapi_paths.health import health_paths
from app.api.openapi_paths.sync import sync_paths
from app.api.openapi_paths.tenants import tenant_paths
from app.api.openapi_paths.webhooks import webhook_paths
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
from app.api.schemas import PauseBody, SyncTrigger, TokenRequest
from app.schemas.tenant import TenantBody, TenantView

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
_SECURITY_SCHEMES: Final = {
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
}


def _schemas() -> dict[str, Schema]:
    _, components = msgspec.json.schema_components(_COMPONENTS, ref_template=SCHEMA_REF)
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
        "paths": {**health_paths(), **tenant_paths(), **webhook_paths(), **sync_paths()},
        "components": {"securitySchemes": _SECURITY_SCHEMES, "schemas": _schemas()},
    }

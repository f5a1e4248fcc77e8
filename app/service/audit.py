"""Who did what to a tenant (issue 12): every configuration change, deletion, token issued or
revoked, held run confirmed or dismissed, and skip-field loss accepted records the token that
did it (`Principal.name`: a token id, or `admin`). Entries name settings, never their values."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from app.service.resources import Resources

log = logging.getLogger(__name__)


class AuditAction(StrEnum):
    CREATE = "create"
    CONFIGURE = "configure"
    DELETE = "delete"
    ISSUE_TOKEN = "issue_token"  # noqa: S105 - an action
    REVOKE_TOKEN = "revoke_token"  # noqa: S105 - an action
    CONFIRM = "confirm"
    DISMISS = "dismiss"
    ACCEPT_SKIP_FIELD_LOSS = "accept_skip_field_loss"
    PAUSE = "pause"
    RESUME = "resume"


async def record(
    res: Resources, tenant: str, action: AuditAction, *, by: str, **details: Any
) -> None:
    """Add an entry to the tenant's audit list, and say it in the log."""
    at = res.clock().isoformat()
    await res.audit.record(tenant, {"at": at, "by": by, "action": action.value, **details})
    log.info("tenant=%s %s by %s", tenant, action.value, by)


async def audit_document(res: Resources, tenant: str) -> dict[str, Any]:
    """GET /tenants/{tenant}/audit: the entries, newest first."""
    return {"tenant": tenant, "entries": await res.audit.entries(tenant)}

"""Tenant tokens (issue 12): issued by the admin, shown once, listed without the token,
revoked; each has a scope (`sync` or `operator`), a name and an expiry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from app.service import audit
from app.service.access import Scope, live, new_tenant_token, token_digest
from app.service.errors import TooManyTokens
from app.service.resources import Resources
from app.store.access_tokens import StoredToken

# Enough for a backend, a few operators and a rotation of each; bounds what a tenant stores.
MAX_TOKENS_PER_TENANT: Final = 50


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just issued: `token` is shown in this answer and never again."""

    token: str
    stored: StoredToken


async def issue_token(
    res: Resources, tenant: str, *, scope: Scope, name: str, lifetime: timedelta, by: str
) -> IssuedToken:
    """A new token of the tenant; TooManyTokens when it holds `MAX_TOKENS_PER_TENANT`."""
    if scope is Scope.ADMIN:
        raise ValueError("a tenant token is never an admin token")
    token, token_id = new_tenant_token(tenant)
    now = res.clock()
    stored = StoredToken(
        id=token_id,
        tenant=tenant,
        scope=scope.value,
        name=name,
        digest=token_digest(token),
        created_at=now,
        expires_at=now + lifetime,
    )
    if not await res.access_tokens.add(stored, limit=MAX_TOKENS_PER_TENANT):
        raise TooManyTokens(
            f"the tenant holds {MAX_TOKENS_PER_TENANT} tokens already: revoke one first"
        )
    await audit.record(
        res, tenant, audit.AuditAction.ISSUE_TOKEN, by=by, token=token_id, scope=scope.value
    )
    return IssuedToken(token, stored)


async def list_tokens(res: Resources, tenant: str) -> list[StoredToken]:
    now = res.clock()
    return [token for token in await res.access_tokens.list(tenant, now) if live(token, now)]


async def revoke_token(res: Resources, tenant: str, token_id: str, *, by: str) -> bool:
    """Revoke the token; False when the tenant has no such token. It stands for nobody from
    the next request on (a console session asks `still_valid` on each)."""
    if not await res.access_tokens.revoke(tenant, token_id):
        return False
    await audit.record(res, tenant, audit.AuditAction.REVOKE_TOKEN, by=by, token=token_id)
    return True

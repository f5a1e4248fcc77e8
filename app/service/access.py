"""Who may do what: the principal a bearer token (or a console session) stands for, and the
one table of what each scope allows. The API guards and the console both ask `allows`; neither
decides on its own.

Scopes (issue 12, least privilege): `admin` (the `ADMIN_TOKEN`, every tenant), `operator` (one
tenant: read everything of it, start runs, resolve held runs, pause, change settings other than
secrets and destinations) and `sync` (one tenant: start runs and read them, what Elevo's backend
needs for `/sync`). Tenant tokens are issued by the admin API (app/service/tokens.py) and
stored by their SHA-256 (app/store/access_tokens.py); they expire, and revoking one takes
effect on the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from app.schemas.common import TENANT_RE
from app.secret import Secret
from app.service.resources import Resources
from app.store.access_tokens import StoredToken

ADMIN_NAME = "admin"
# A token's "last used" is written at most this often: not one Redis write per request.
LAST_USED_PRECISION: Final = timedelta(minutes=1)


class Scope(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    SYNC = "sync"


class Action(StrEnum):
    """Everything a caller may be allowed to do; a route or a console page asks for one."""

    LIST_TENANTS = "list_tenants"  # the tenant list, across tenants
    METRICS = "metrics"
    READ_STATUS = "read_status"  # status, runs, histories, configuration (redacted) of a tenant
    READ_RUNS = "read_runs"  # a run's document, the runs list
    START_RUN = "start_run"  # full, changes, users, dry runs
    RESOLVE_HELD = "resolve_held"  # confirm or dismiss a held run, accept a skip-field loss
    PAUSE = "pause"  # pause and resume a tenant
    CONFIGURE = "configure"  # settings other than secrets and destinations
    CONFIGURE_SECRETS = "configure_secrets"  # secrets, scim_url, Lucca subdomain/domain
    DELETE_TENANT = "delete_tenant"
    MANAGE_TOKENS = "manage_tokens"


_ALLOWED: dict[Scope, frozenset[Action]] = {
    Scope.ADMIN: frozenset(Action),
    Scope.OPERATOR: frozenset(
        {
            Action.READ_STATUS,
            Action.READ_RUNS,
            Action.START_RUN,
            Action.RESOLVE_HELD,
            Action.PAUSE,
            Action.CONFIGURE,
        }
    ),
    Scope.SYNC: frozenset({Action.READ_RUNS, Action.START_RUN}),
}


def scopes_allowing(action: Action) -> tuple[Scope, ...]:
    """The scopes whose tokens may do `action` (what the OpenAPI document says of a route)."""
    return tuple(scope for scope in Scope if action in _ALLOWED[scope])


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller: `name` is what audit records show (`admin`, or a tenant token's id),
    `tenant` is None for the admin (every tenant) and the one tenant of a tenant token."""

    name: str
    scope: Scope
    tenant: str | None = None

    def allows(self, action: Action, tenant: str | None = None) -> bool:
        """Whether this caller may do `action`, on `tenant` when the action concerns one."""
        if action not in _ALLOWED[self.scope]:
            return False
        if self.tenant is None:
            return True
        return tenant is not None and tenant == self.tenant


ADMIN = Principal(ADMIN_NAME, Scope.ADMIN)
# What a tenant token may be; a stored record claiming another scope stands for nobody.
_TENANT_SCOPES: Final = frozenset({Scope.OPERATOR.value, Scope.SYNC.value})


def is_admin_token(token: str, admin_token: Secret) -> bool:
    # Comparing digests keeps both the content and the length of the token out of the timing.
    expected = hashlib.sha256(admin_token.reveal().encode()).digest()
    given = hashlib.sha256(token.encode()).digest()
    return hmac.compare_digest(given, expected)


# -- tenant tokens: `les_{tenant}_{id}_{secret}` ----------------------------------------------
# The tenant and the id say which record to check the token's SHA-256 against; the secret is
# 256 random bits. A tenant name and an id hold no "_", the secret may.

TOKEN_PREFIX: Final = "les_"  # noqa: S105 - a prefix, not a secret
TOKEN_ID_RE: Final = re.compile(r"[0-9a-f]{12}")
_SECRET_BYTES: Final = 32
_MAX_TOKEN_LENGTH: Final = 200


def new_tenant_token(tenant: str) -> tuple[str, str]:
    """A fresh token of `tenant`, and its id."""
    token_id = secrets.token_hex(6)
    return f"{TOKEN_PREFIX}{tenant}_{token_id}_{secrets.token_urlsafe(_SECRET_BYTES)}", token_id


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _tenant_and_id(token: str) -> tuple[str, str] | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > _MAX_TOKEN_LENGTH:
        return None
    tenant, _, rest = token.removeprefix(TOKEN_PREFIX).partition("_")
    token_id, _, secret = rest.partition("_")
    if not (TENANT_RE.fullmatch(tenant) and TOKEN_ID_RE.fullmatch(token_id) and secret):
        return None
    return tenant, token_id


def live(token: StoredToken, now: datetime) -> bool:
    return now < token.expires_at


async def authenticate(res: Resources, token: str | None) -> Principal | None:
    """The principal a bearer token stands for, or None when it stands for nobody: the admin
    token, or a tenant token neither revoked nor expired."""
    if not token:
        return None
    if is_admin_token(token, res.settings.admin_token):
        return ADMIN
    named = _tenant_and_id(token)
    if named is None:
        return None
    tenant, token_id = named
    stored = await res.access_tokens.get(tenant, token_id)
    now = res.clock()
    if stored is None or not live(stored, now) or stored.scope not in _TENANT_SCOPES:
        return None
    if not hmac.compare_digest(stored.digest, token_digest(token)):
        return None
    if stored.last_used_at is None or now - stored.last_used_at >= LAST_USED_PRECISION:
        await res.access_tokens.touch(tenant, token_id, now)
    return Principal(token_id, Scope(stored.scope), tenant)


async def still_valid(res: Resources, principal: Principal) -> bool:
    """Whether a principal signed in earlier (a console session) still stands: the admin
    always does; a tenant token stops standing once revoked or expired."""
    if principal.tenant is None:
        return principal.scope is Scope.ADMIN
    stored = await res.access_tokens.get(principal.tenant, principal.name)
    return stored is not None and live(stored, res.clock()) and stored.scope == principal.scope

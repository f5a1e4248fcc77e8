"""Who may do what: the principal a bearer token (or a console session) stands for, and the
one table of what each scope allows. The API guards and the console both ask `allows`; neither
decides on its own.

Scopes (issue 12, least privilege): `admin` (the `ADMIN_TOKEN`, every tenant), `operator` (one
tenant: read everything of it, start runs, resolve held runs, pause, change settings other than
secrets and destinations) and `sync` (one tenant: start runs and read them, what Elevo's backend
needs for `/sync`). Tenant tokens are issued by the admin API and stored hashed.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

from app.secret import Secret
from app.service.resources import Resources

ADMIN_NAME = "admin"


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


def is_admin_token(token: str, admin_token: Secret) -> bool:
    # Comparing digests keeps both the content and the length of the token out of the timing.
    expected = hashlib.sha256(admin_token.reveal().encode()).digest()
    given = hashlib.sha256(token.encode()).digest()
    return hmac.compare_digest(given, expected)


async def authenticate(res: Resources, token: str | None) -> Principal | None:
    """The principal a bearer token stands for, or None when it stands for nobody.
    Only the admin token is known until tenant tokens are stored (issue 12, point 2)."""
    if not token:
        return None
    if is_admin_token(token, res.settings.admin_token):
        return ADMIN
    return None


async def still_valid(res: Resources, principal: Principal) -> bool:
    """Whether a principal signed in earlier (a console session) still stands: the admin
    always does; a tenant token stops standing once revoked or expired."""
    return principal.scope is Scope.ADMIN

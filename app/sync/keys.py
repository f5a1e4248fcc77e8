"""Every Redis key the sync writes, in one place (tenant configs live in app/tenant_store.py)."""

from __future__ import annotations


def gen(tenant: str, user_id: str) -> str:
    """Counter bumped by each change notice for a user: the newest job wins."""
    return f"t:{tenant}:gen:{user_id}"


def failures(tenant: str, user_id: str) -> str:
    """Consecutive failed tries of a user's sync (5xx, timeouts), for backoff and giving up."""
    return f"t:{tenant}:failures:{user_id}"


def busy(tenant: str, user_id: str) -> str:
    """Held while a user syncs and for a cooldown after: later events collapse into one sync."""
    return f"t:{tenant}:busy:{user_id}"


def idmap(tenant: str) -> str:
    """Hash: Lucca id -> Elevo profile id, a cache of the externalId link."""
    return f"t:{tenant}:idmap"


def history(tenant: str, user_id: str) -> str:
    return f"t:{tenant}:history:{user_id}"


def awaiting_manager(tenant: str, manager_id: str) -> str:
    """Set of reports synced with no manager because this manager had no profile yet."""
    return f"t:{tenant}:awaiting-manager:{manager_id}"


def user_errors(tenant: str) -> str:
    """Hash: Lucca id -> the last error of a user whose sync fails."""
    return f"t:{tenant}:errors"


def status(tenant: str) -> str:
    """Hash of tenant-level facts: last event, last full run, flags."""
    return f"t:{tenant}:status"


def run(tenant: str, run_id: str) -> str:
    return f"t:{tenant}:run:{run_id}"


def run_plan(tenant: str, run_id: str) -> str:
    return f"t:{tenant}:run:{run_id}:plan"


def run_users(tenant: str, run_id: str) -> str:
    """Hash: Lucca id -> the user's outcome in the run (the counts derive from it)."""
    return f"t:{tenant}:run:{run_id}:users"


def run_errors(tenant: str, run_id: str) -> str:
    return f"t:{tenant}:run:{run_id}:errors"


def runs(tenant: str) -> str:
    """Sorted set of run ids by start time."""
    return f"t:{tenant}:runs"


def event(tenant: str, event_id: str) -> str:
    """Dedupe mark of one webhook event, kept for Lucca's whole retry horizon."""
    return f"t:{tenant}:event:{event_id}"


def budget(tenant: str) -> str:
    """Token bucket of the tenant's Lucca requests, shared by every process."""
    return f"t:{tenant}:lucca-budget"


def cooldown(tenant: str) -> str:
    """Set after a Lucca 429: nobody calls Lucca for this tenant until it expires."""
    return f"t:{tenant}:lucca-cooldown"


def lucca_revoked(tenant: str) -> str:
    """Set when Lucca refused the tenant's API key: no more calls until a new key comes."""
    return f"t:{tenant}:lucca-revoked"


def tenant_pattern(tenant: str) -> str:
    """Every key of the tenant's sync state (not its config), for a purge."""
    return f"t:{tenant}:*"


def active_full_run(tenant: str) -> str:
    return f"t:{tenant}:full-run"

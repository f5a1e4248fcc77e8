"""Every Redis key and job id, in one place.

The strings are a stored format: data written by an earlier version must still be found, so
a key changes only with a migration.
"""

from __future__ import annotations

from datetime import date

from arq.constants import default_queue_name, job_key_prefix

# -- ARQ's own keys, and our job ids ------------------------------------------------------------


def queue() -> str:
    """ARQ's sorted set of queued job ids, scored by when each may start."""
    return default_queue_name


def job(job_id: str) -> str:
    """ARQ's record of one queued job (its serialized function and arguments)."""
    return job_key_prefix + job_id


def sync_job_id(tenant: str, user_id: str, generation: int) -> str:
    """One per change notice: new by construction, so never refused as a duplicate."""
    return f"sync:{tenant}:{user_id}:{generation}"


def due_job_id(tenant: str, user_id: str, last_day: date) -> str:
    """One per contract end: rescheduling the same last day queues nothing twice."""
    return f"due:{tenant}:{user_id}:{last_day.isoformat()}"


def step_job_id(function: str, tenant: str, run_id: str, arg: int) -> str:
    """A fixed id per reconciliation step: a step re-queued after a crash is not queued twice."""
    return f"{function}:{tenant}:{run_id}:{arg}"


# -- tenant configs -------------------------------------------------------------------------


def tenants() -> str:
    """Set of every tenant name."""
    return "tenants"


def tenant_config(tenant: str) -> str:
    """The tenant's config document, its secrets encrypted (app/store/tenants.py)."""
    return f"tenant:{tenant}:config"


# -- a tenant's sync state ----------------------------------------------------------------


def gen(tenant: str, user_id: str) -> str:
    """Counter bumped by each change notice for a user: the newest job wins."""
    return f"t:{tenant}:gen:{user_id}"


def notice_sequence(tenant: str) -> str:
    """The tenant's notice numbers: each notice takes the next; a read notes the current one."""
    return f"t:{tenant}:notices"


def noticed(tenant: str, user_id: str) -> str:
    """The number of the user's latest change notice (`notice_sequence`)."""
    return f"t:{tenant}:noticed:{user_id}"


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


def nightly_claim(tenant: str, slot: date) -> str:
    """Set by the first worker to start a night's reconciliation."""
    return f"{status(tenant)}:nightly:{slot.isoformat()}"


def poll_slot(tenant: str) -> str:
    """Set for one poll interval by the worker that starts a poll."""
    return f"{status(tenant)}:poll-slot"


def watermark(tenant: str) -> str:
    """The start of the last poll: the next one asks Lucca for changes since then."""
    return f"t:{tenant}:watermark"


def skip_excluded(tenant: str) -> str:
    """Set of the users whose skip field was last seen ticked (sync-rules.md, absent means
    unticked): one of them whose field vanishes is held until a complete listing decides."""
    return f"t:{tenant}:skip-field:excluded"


def skip_listing(tenant: str) -> str:
    """How many employees showed the skip field in the tenant's last complete listing."""
    return f"t:{tenant}:skip-field:listing"


def run(tenant: str, run_id: str) -> str:
    return f"t:{tenant}:run:{run_id}"


def run_failures(tenant: str, run_id: str) -> str:
    """Consecutive failed tries of a run's steps."""
    return run_part(tenant, run_id, "failures")


def run_part(tenant: str, run_id: str, part: str) -> str:
    """A run's working sets: the Elevo snapshot ("elevo", "by-ext", "by-name", "managed"),
    the Lucca users seen ("seen"), what waits for the finish ("suspend", "follow", "retry",
    "undecided": listed before the run knew whether the key still sees the skip field),
    the consecutive failures of its steps ("failures"), and what its work of several Lucca
    requests has done so far (app/store/progress.py): the steps counted ("counted"), a page's
    answer ("pages"), by-id reads ("reads"), the users the finish checked by id ("checked"),
    decided again ("redecided", the still due in "due") and suspended ("applied"), a
    listing's ids and unreadable items ("listed", "unreadable")."""
    return f"{run(tenant, run_id)}:{part}"


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


def lucca_read(tenant: str, user_id: str) -> str:
    """What one Lucca read said about a user, shared with every job for a minute."""
    return f"t:{tenant}:lucca-read:{user_id}"


def lucca_wanted(tenant: str) -> str:
    """Sorted set of users whose jobs wait for the budget: the next request reads them too."""
    return f"t:{tenant}:lucca-wanted"


def lucca_revoked(tenant: str) -> str:
    """Set when Lucca refused the tenant's API key: no more calls until a new key comes."""
    return f"t:{tenant}:lucca-revoked"


def tenant_pattern(tenant: str) -> str:
    """Every key of the tenant's sync state (not its config), for a purge."""
    return f"t:{tenant}:*"


def active_full_run(tenant: str) -> str:
    """The id of the tenant's running full reconciliation, if one runs."""
    return f"t:{tenant}:full-run"

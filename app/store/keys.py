"""Every Redis key and job id, in one place.

The strings are a stored format: data written by an earlier version must still be found, so
a key changes only with a migration.
"""

from __future__ import annotations

from datetime import date

from arq.constants import (
    default_queue_name,
    health_check_key_suffix,
    in_progress_key_prefix,
    job_key_prefix,
)

# -- ARQ's own keys, and our job ids ------------------------------------------------------------


def queue() -> str:
    """ARQ's sorted set of queued job ids, scored by when each may start: the live jobs (a
    user's sync, alerts, the crons) and anything queued before the runs' queue existed."""
    return default_queue_name


def runs_queue() -> str:
    """ARQ's queue of the steps of runs (reconciliation pages and the like): their own queue,
    so that a process serving it alone takes their CPU away from the live jobs."""
    return "arq:queue:runs"


def queues() -> tuple[str, ...]:
    """Every queue a job may wait in."""
    return (queue(), runs_queue())


def runs_standby_health() -> str:
    """ARQ's health-check key of the runs' queue served inside the `worker:` process (the
    queue's own, `<queue>:health-check`, is the dedicated processes')."""
    return runs_queue() + ":standby" + health_check_key_suffix


def runs_worker() -> str:
    """Set, with a short expiry, while a process dedicated to the runs' queue serves it; the
    `worker:` process serves that queue itself only when this is absent."""
    return "arq:runs-worker"


def job(job_id: str) -> str:
    """ARQ's record of one queued job (its serialized function and arguments)."""
    return job_key_prefix + job_id


def sync_job_id(tenant: str, user_id: str, generation: int) -> str:
    """One per change notice: new by construction, so never refused as a duplicate."""
    return f"sync:{tenant}:{user_id}:{generation}"


def due_job_id(tenant: str, user_id: str, last_day: date) -> str:
    """One per contract end: rescheduling the same last day queues nothing twice."""
    return f"due:{tenant}:{user_id}:{last_day.isoformat()}"


def coalesced_job_id(tenant: str, second: int) -> str:
    """A drain of the tenant's coalesced events, queued at this second (since the epoch)."""
    return f"drain_coalesced:{tenant}:{second}"


def step_job_id(function: str, tenant: str, run_id: str, arg: int) -> str:
    """A fixed id per reconciliation step: a step re-queued after a crash is not queued twice."""
    return f"{function}:{tenant}:{run_id}:{arg}"


def run_job_id(function: str, tenant: str, run_id: str) -> str:
    """The one job of a run that has one (a poll, a department, a plan of listed users)."""
    return f"{function}:{tenant}:{run_id}"


def job_tenant(job_id: str) -> str | None:
    """The tenant a job id names: every id above names it second (`<kind>:<tenant>:...`);
    ARQ's cron jobs (`cron:<name>:<time>`) name none."""
    parts = job_id.split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] != "cron" else None


def tenant_job_pattern(tenant: str) -> str:
    """A glob every job id of the tenant matches (some of another's may too: check
    `job_tenant`)."""
    return f"*:{tenant}:*"


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


def profile_copy(tenant: str, user_id: str) -> str:
    """The employee's Elevo profile as the sync last read or wrote it, with its version: a
    sync that finds the version still current writes with `If-Match` without reading."""
    return f"t:{tenant}:profile:{user_id}"


def history(tenant: str, user_id: str) -> str:
    """String: the employee's history, at most 200 entries, as frames of identical decisions
    (app/store/history_blob.py, which reads them newest first); an entry older than a
    retention goes as a later one lands, the whole a retention after the last entry."""
    return f"t:{tenant}:hist:{user_id}"


def old_history(tenant: str, user_id: str) -> str:
    """List: the history entries an earlier version pushed (history_format's packed entries,
    newest first). Never written now; read after `history` as its older entries until it
    expires on its own (a retention after its last entry)."""
    return f"t:{tenant}:history:{user_id}"


def unsure_creates(tenant: str) -> str:
    """Sorted set: Lucca id -> when a creation of its profile was sent and its answer lost
    (a timeout, a reset, a cancelled job): Elevo may have applied it, even later."""
    return f"t:{tenant}:unsure-creates"


def duplicate_profiles(tenant: str) -> str:
    """List (newest first, capped): second profiles of one employee that a sync retired."""
    return f"t:{tenant}:duplicate-profiles"


def awaiting_manager(tenant: str, manager_id: str) -> str:
    """Set of reports to sync again once this manager syncs: they were synced with no manager
    because it had no profile yet, or kept their manager while its own sync failed."""
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


def poll_read(tenant: str) -> str:
    """Hash: user -> the `modifiedAt` the last poll read, so that the next one, reading the
    overlap again, recognises what it already queued."""
    return f"t:{tenant}:poll-read"


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
    """A run's working sets: the Elevo snapshot ("elevo", "by-ext", "by-name", "managed", and
    "elevo-total": the listing's totalResults as its last page stored told it),
    the Lucca users seen ("seen"), what waits for the finish ("suspend", "follow", "retry",
    "undecided": listed before the run knew whether the key still sees the skip field),
    the consecutive failures of its steps ("failures"), and what its work of several Lucca
    requests has done so far (app/store/progress.py): the steps counted ("counted"), a page's
    answer ("pages"), where the pages done end ("pages-done"), by-id reads ("reads"), the
    users the finish checked by id ("checked"), decided again ("redecided", the still due in
    "due") and suspended ("applied"), a listing's ids and unreadable items ("listed",
    "unreadable")."""
    return f"{run(tenant, run_id)}:{part}"


# Every part of `run_part`: what a run only needs while it runs (and, for a held run, its
# review and a retried finish), deleted when it ends done or failed.
RUN_WORKING_PARTS = (
    "elevo",
    "elevo-total",
    "by-ext",
    "by-name",
    "managed",
    "seen",
    "suspend",
    "follow",
    "retry",
    "undecided",
    "failures",
    "counted",
    "pages",
    "pages-done",
    "reads",
    "checked",
    "redecided",
    "due",
    "applied",
    "listed",
    "unreadable",
)


def run_working_sets(tenant: str, run_id: str) -> list[str]:
    """Every working set of a run (`run_part`), present or not."""
    return [run_part(tenant, run_id, part) for part in RUN_WORKING_PARTS]


def run_plan(tenant: str, run_id: str) -> str:
    return f"t:{tenant}:run:{run_id}:plan"


def run_users(tenant: str, run_id: str) -> str:
    """Hash: Lucca id -> the user's outcome in the run (the counts derive from it)."""
    return f"t:{tenant}:run:{run_id}:users"


def run_errors(tenant: str, run_id: str) -> str:
    return f"t:{tenant}:run:{run_id}:errors"


def runs(tenant: str) -> str:
    """Sorted set of run ids by start time (a webhook's run: `webhook_runs`)."""
    return f"t:{tenant}:runs"


def webhook_runs(tenant: str) -> str:
    """Sorted set of webhook runs' ids by start time: kept as long as their records
    (WEBHOOK_RUN_RETENTION_SECONDS), shorter than the other runs'."""
    return f"t:{tenant}:webhook-runs"


def webhook_hours(tenant: str, day: str) -> str:
    """Hash: the webhook runs a tenant created in each hour of a UTC day (`day`: YYYY-MM-DD),
    `HH:runs`, and their outcomes, `HH:<action>` (app/store/webhook_hours.py)."""
    return f"t:{tenant}:webhook-hours:{day}"


def event(tenant: str, event_id: str) -> str:
    """Dedupe mark of one webhook event, kept for Lucca's whole retry horizon."""
    return f"t:{tenant}:event:{event_id}"


def elevo_pause(tenant: str) -> str:
    """Set after an Elevo 429 for its Retry-After, or while Elevo leaves requests unanswered:
    no process calls the tenant's Elevo. Holds why (`429` or `unanswered`)."""
    return f"t:{tenant}:elevo-pause"


def elevo_unanswered(tenant: str) -> str:
    """Counter of the tenant's Elevo requests that got no answer lately (timeouts, resets)."""
    return f"t:{tenant}:elevo-unanswered"


def lucca_read(tenant: str, user_id: str) -> str:
    """What one Lucca read said about a user, shared with every job for a minute."""
    return f"t:{tenant}:lucca-read:{user_id}"


def lucca_wanted(tenant: str) -> str:
    """Sorted set of users whose jobs wait for the budget: the next request reads them too."""
    return f"t:{tenant}:lucca-wanted"


def lucca_revoked(tenant: str) -> str:
    """Set when Lucca refused the tenant's API key: no more calls until a new key comes."""
    return f"t:{tenant}:lucca-revoked"


def lucca_endpoint(tenant: str) -> str:
    """JSON: the tenant's webhook endpoint as registered through Lucca's API (issue 15)."""
    return f"t:{tenant}:lucca-endpoint"


def lucca_watch_slot(tenant: str) -> str:
    """Set for one watch interval by the worker that checks the tenant's webhook endpoint."""
    return f"t:{tenant}:lucca-endpoint:watch-slot"


def lucca_webhook_job_id(tenant: str, action: str) -> str:
    """One queued registration or watch of a tenant's endpoint at a time."""
    return f"lucca-webhook:{tenant}:{action}"


def tenant_pattern(tenant: str) -> str:
    """Every key of the tenant's sync state (not its config), for a purge."""
    return f"t:{tenant}:*"


def active_full_run(tenant: str) -> str:
    """The id of the tenant's running full reconciliation, if one runs."""
    return f"t:{tenant}:full-run"


# -- access: tenant tokens, and who did what --------------------------------------------------


def access_token(tenant: str, token_id: str) -> str:
    """Hash of one tenant token: the SHA-256 of the token (never the token), its scope, name
    and times; it expires with the token. Under `t:{tenant}:`, so a deleted tenant's go too."""
    return f"t:{tenant}:access-token:{token_id}"


def access_tokens(tenant: str) -> str:
    """Sorted set of the tenant's token ids, scored by their expiry time."""
    return f"t:{tenant}:access-tokens"


def audit(tenant: str) -> str:
    """List of who changed the tenant (its configuration, tokens, held runs), newest first.
    Outside `t:{tenant}:`: a tenant's deletion stays on record after its purge (it expires)."""
    return f"audit:{tenant}"


# -- what waits for a tenant-level reason to clear (sync-rules.md, "nothing waits for ever") --


def parked(tenant: str) -> str:
    """Hash: Lucca id -> why that employee's change waits (a reason code of
    app/service/waiting.py); re-queued as soon as the reason clears."""
    return f"t:{tenant}:parked"


def parked_since(tenant: str) -> str:
    """Hash: reason code -> when the first employee parked for it since it last cleared; also
    `overflow:<code>` when the parked hash was full (the clearing then starts a full run)."""
    return f"t:{tenant}:parked-since"


def parked_runs(tenant: str) -> str:
    """Set of `<reason code>:<run mode>`: a full run or a poll that stopped for a reason of the
    tenant, started again once it clears."""
    return f"t:{tenant}:parked-runs"


def paused(tenant: str) -> str:
    """Hash: who paused the tenant, when and why, and the runs asked meanwhile."""
    return f"t:{tenant}:paused"


def probe(tenant: str, reason: str) -> str:
    """Set for the backoff delay after a probe of a refused credential (or a listing check)."""
    return f"t:{tenant}:probe:{reason}"


def probe_tries(tenant: str, reason: str) -> str:
    """How many probes of a refused credential failed in a row (the backoff's exponent)."""
    return f"t:{tenant}:probe-tries:{reason}"


# -- disconnecting a tenant (app/store/release.py) ----------------------------------------------


def release(tenant: str) -> str:
    """Hash: the tenant's disconnection (its release run, state, error, profiles released per
    sweep). Beside the config, not in the sync state: it is deleted last, after the purge."""
    return f"tenant:{tenant}:release"


def release_job_id(tenant: str, run_id: str, sweep: int, start: int) -> str:
    """A fixed id per page of a release sweep: a page re-queued after a crash is not queued
    twice."""
    return f"release_page:{tenant}:{run_id}:{sweep}:{start}"


# -- alerts (app/store/alerts.py) ---------------------------------------------------------------


def alert_states(tenant: str) -> str:
    """Hash: alert kind -> the id of the notice that raised it, while it is raised."""
    return f"t:{tenant}:alerts"


def alert_pending(tenant: str) -> str:
    """Set of the notices not sent yet: the minute's check queues their jobs again, so a
    notice whose job was lost (a crash between the two writes) still goes."""
    return f"t:{tenant}:alerts-pending"


def alert_job_id(tenant: str, notice_id: str) -> str:
    """One job per notice: a notice is sent once, however often its sending is queued."""
    return f"alert:{tenant}:{notice_id}"


def alert_notice(tenant: str, notice_id: str) -> str:
    """One notice to send (its JSON document), until it is sent or given up."""
    return f"t:{tenant}:alert-notice:{notice_id}"


# -- a Lucca host's budget, shared by every tenant pointing at it ------------------------------


def lucca_requests(host: str) -> str:
    """Sorted set of the requests granted to one Lucca host (its base URL), by time: the
    sliding window of app/store/budget.py."""
    return f"lucca:{host}:requests"


def lucca_bucket(host: str) -> str:
    """Hash (tokens, ts): the token bucket that spreads a Lucca host's requests over its window."""
    return f"lucca:{host}:bucket"


def lucca_pause(host: str) -> str:
    """Set after a Lucca 429 for its Retry-After: no process calls that host until it expires."""
    return f"lucca:{host}:pause"


# -- webhook ingest: dedupe by body, the rate, what is coalesced beyond it ------------------


def event_body(tenant: str, digest: str) -> str:
    """Dedupe mark of a webhook event without a usable id, by the SHA-256 of its raw body."""
    return f"t:{tenant}:event-body:{digest}"


def webhook_ingest(tenant: str, minute: int) -> str:
    """How many signed events the tenant sent in one minute (since the epoch)."""
    return f"t:{tenant}:webhook-ingest:{minute}"


def webhook_coalesced_users(tenant: str) -> str:
    """Set of employees named by events beyond the ingest rate, synced by the next drain."""
    return f"t:{tenant}:webhook-coalesced:users"


def webhook_coalesced_departments(tenant: str) -> str:
    """Set of departments named by events beyond the ingest rate."""
    return f"t:{tenant}:webhook-coalesced:departments"


def webhook_coalesced_drain(tenant: str) -> str:
    """Set while a drain of the coalesced events is queued: the events that find it set join
    that drain; the drain deletes it as it takes them."""
    return f"t:{tenant}:webhook-coalesced:drain"


def webhook_coalesced_poll(tenant: str) -> str:
    """Set when events beyond the ingest rate need a `changes` poll (unreadable events, or
    more employees than the coalesced set holds)."""
    return f"t:{tenant}:webhook-coalesced:poll"


# -- the operator console ------------------------------------------------------------------


def console_session(session_id: str) -> str:
    """Hash: a signed-in console session (who, their scope and tenant, its CSRF token);
    it expires with the session."""
    return f"console:session:{session_id}"


# -- the workers ----------------------------------------------------------------------------


def in_progress(job_id: str) -> str:
    """ARQ's mark of a running job (kept for the largest job timeout + 10 s, with no owner)."""
    return in_progress_key_prefix + job_id


def running_jobs() -> str:
    """Hash: job id -> the worker process running it (`worker_alive`)."""
    return "workers:running"


def worker_alive(worker_id: str) -> str:
    """A worker process's heartbeat: it lapses shortly after the process dies."""
    return f"workers:alive:{worker_id}"

"""Process settings, read once from the environment; a missing variable fails at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from app.clients.egress import EgressPolicy, IPNetwork, parse_allowed_networks
from app.secret import Secret

DEFAULT_LUCCA_URL_TEMPLATE = "https://{subdomain}.{domain}"
DEFAULT_LUCCA_TOKEN_URL = "https://accounts.world.luccasoftware.com/connect/token"  # noqa: S105 - a URL


class SettingsError(RuntimeError):
    """The environment lacks a variable, or holds a value of the wrong shape."""


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is required (see .env.example)")
    return value


MIN_ADMIN_TOKEN_LENGTH = 16
# WEBHOOK_RUN_RETENTION_SECONDS' default (3 days), or RUN_RETENTION_SECONDS when shorter.
WEBHOOK_RUN_DAYS_S = 3 * 24 * 3600


def _admin_token(environ: Mapping[str, str]) -> str:
    token = _required(environ, "ADMIN_TOKEN")
    if len(token) < MIN_ADMIN_TOKEN_LENGTH:
        raise SettingsError(f"ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_LENGTH} characters")
    return token


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if value < 0:
        raise SettingsError(f"{name} must not be negative")
    return value


MIN_SESSION_KEY_LENGTH = 32


def _session_key(environ: Mapping[str, str]) -> Secret | None:
    key = environ.get("SESSION_KEY", "").strip()
    if not key:
        return None
    if len(key) < MIN_SESSION_KEY_LENGTH:
        raise SettingsError(f"SESSION_KEY must be at least {MIN_SESSION_KEY_LENGTH} characters")
    return Secret(key)


def _networks(environ: Mapping[str, str], name: str) -> tuple[IPNetwork, ...]:
    try:
        return parse_allowed_networks(environ.get(name, ""))
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None


def _public_url(environ: Mapping[str, str]) -> str | None:
    raw = environ.get("PUBLIC_URL", "").strip()
    if not raw:
        return None
    if not raw.lower().startswith(("https://", "http://")) or "?" in raw or "#" in raw:
        raise SettingsError("PUBLIC_URL must be an http(s) URL without query or fragment")
    return raw.rstrip("/")


SentinelAddress = tuple[str, int]


def _host_port(entry: str) -> SentinelAddress:
    """`host:port`, `[v6 address]:port` for an IPv6 address."""
    host, _, port = entry.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # an IPv6 address without brackets: where its port begins is a guess
    if (
        not host
        or any(c.isspace() for c in host)
        or not port.isdigit()
        or not 0 < int(port) < 65536
    ):
        raise SettingsError(
            f"REDIS_SENTINELS: {entry!r} is not host:port (e.g. 10.0.0.5:26379, [fd00::5]:26379)"
        )
    return host, int(port)


def _redis_sentinel(environ: Mapping[str, str]) -> tuple[tuple[SentinelAddress, ...], str]:
    """The sentinels and the name of the master they monitor: both or neither."""
    entries = [e.strip() for e in environ.get("REDIS_SENTINELS", "").split(",") if e.strip()]
    sentinels = tuple(_host_port(entry) for entry in entries)
    master = environ.get("REDIS_SENTINEL_MASTER", "").strip()
    if sentinels and not master:
        raise SettingsError(
            "REDIS_SENTINEL_MASTER is required with REDIS_SENTINELS: the name the sentinels"
            " monitor (`sentinel monitor <name> ...` in their configuration)"
        )
    if master and not sentinels:
        raise SettingsError("REDIS_SENTINELS is required with REDIS_SENTINEL_MASTER")
    if any(c.isspace() for c in master):
        raise SettingsError(f"REDIS_SENTINEL_MASTER must be one word, not {master!r}")
    url = environ.get("REDIS_URL", "").strip()  # a missing one is reported as such, later
    if sentinels and url and url.partition("://")[0].lower() not in {"redis", "rediss"}:
        raise SettingsError(
            "REDIS_URL must be redis:// or rediss:// with REDIS_SENTINELS (its database,"
            " user, password and TLS apply to the master the sentinels name; its host is unused)"
        )
    return sentinels, master


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a process reads from its environment.

    Only the contract's variables are required; the rest are tuning knobs with
    defaults documented in ``.env.example``.
    """

    redis_url: str
    admin_token: Secret
    secrets_keys: tuple[Secret, ...]
    # Redis Sentinel: where the sentinels listen and the name of the master they monitor. With
    # them every process asks the sentinels where the primary is, and follows a failover;
    # REDIS_URL then gives the database, user, password and TLS, not the address.
    redis_sentinels: tuple[SentinelAddress, ...] = ()
    redis_sentinel_master: str = ""
    lucca_url_template: str = DEFAULT_LUCCA_URL_TEMPLATE
    allow_http_elevo: bool = False
    # Private networks outbound URLs may resolve to (a proxy, an on-premises Elevo).
    elevo_allowed_networks: tuple[IPNetwork, ...] = ()
    port: int = 8000
    log_level: str = "INFO"
    # Events for one user within this window after a sync collapse into one trailing sync.
    user_cooldown_seconds: float = 2.0
    # How long concurrent per-user jobs of one tenant wait to share one Lucca `id=` request.
    # Every change waits it; under the budget, jobs share requests through the "wanted" set
    # anyway (docs/benchmarks.md, 2: what 0.01 and 0.002 cost and save).
    lucca_batch_window_seconds: float = 0.002
    # While a tenant's request is in flight, the next batch gathers asks until it returns, at
    # most this long: under load, jobs share requests (docs/benchmarks.md, 3).
    lucca_batch_hold_seconds: float = 0.05
    # The window while the process works through a backlog (100 asks/s and more): jobs that
    # wait for a core anyway share more requests (docs/benchmarks.md, 3).
    lucca_batch_busy_window_seconds: float = 0.02
    # The `worker-runs:` process lowers its CPU priority by this much (os.nice; 0: not).
    runs_worker_nice: int = 10
    worker_max_jobs: int = 200
    # A queued job waits half of it on average; each worker process polls each of its queues
    # this often (docs/benchmarks.md, 2: the idle CPU of 0.05, 0.01 and 0.002).
    worker_poll_delay_seconds: float = 0.01
    # A worker process whose heartbeat is this old counts as dead: its jobs run again on
    # another (ARQ alone would hold them for its largest job timeout + 10 s).
    worker_dead_after_seconds: float = 20.0
    http_timeout_seconds: float = 10.0
    # Once several of a tenant's Elevo requests went unanswered (a stalled Elevo), its calls
    # wait this long before the next try (app/service/pacing.py).
    elevo_stall_pause_seconds: float = 10.0
    # Requests in flight to one customer's Elevo, per process: a catch-up of hundreds of jobs
    # does not meet a recovering Elevo all at once.
    elevo_concurrency: int = 16
    # The web process: a request's head, then its body, must arrive within these.
    request_header_timeout_seconds: float = 10.0
    request_body_timeout_seconds: float = 20.0
    # ARQ's timeout of one per-user sync and of one step of a run; each job gives up on its
    # own a little earlier (app/service/results.py `own_deadline`), so that it can still
    # record the timeout and retry: ARQ fails a timed-out job for good.
    sync_job_timeout_seconds: float = 30.0
    step_job_timeout_seconds: float = 60.0
    # A run that made no progress for this long (waits for a tenant-level reason, which the
    # run shows, excepted) is failed by the minute's watchdog, so that the next run can start.
    run_stall_seconds: float = 600.0
    webhook_dedupe_seconds: int = 7 * 24 * 3600
    # Signed events per tenant per minute handled one by one; beyond, they are coalesced.
    webhook_events_per_minute: int = 120
    run_retention_seconds: int = 30 * 24 * 3600
    # A webhook's run record (and its index entry) is kept this long: its hour's counts stay
    # RUN_RETENTION_SECONDS in a tenant's daily aggregate (app/store/webhook_hours.py).
    webhook_run_retention_seconds: int = WEBHOOK_RUN_DAYS_S
    # Replaces every tenant's Lucca budget: for simulators and benchmarks only (Lucca allows 50).
    lucca_budget_override: int | None = None
    # The Lucca budget's window (Lucca counts per minute); the sync counts each request for
    # the window plus a margin, so one slowed on its way still lands inside Lucca's window.
    lucca_budget_window_seconds: float = 60.0
    lucca_budget_margin_seconds: float = 1.0
    # The share of the budget background work (reconciliation, polls) leaves to live syncs.
    lucca_live_reserve: float = 0.2
    # The worker serves its Prometheus metrics here; 0 turns that off.
    worker_metrics_port: int = 9101
    # Where the worker's metrics listen; they name tenants, so not on every interface.
    worker_metrics_host: str = "127.0.0.1"
    # Signs the operator console's session cookie; without it the console is off (404).
    session_key: Secret | None = None
    # Where operators reach the service; an https URL makes the console's cookie Secure.
    public_url: str | None = None
    # How long a console session lives after sign-in.
    console_session_seconds: int = 8 * 3600
    # Lucca's OAuth 2 token endpoint (client credentials) for the webhook API.
    lucca_token_url: str = DEFAULT_LUCCA_TOKEN_URL
    # How often the webhook endpoint of an OAuth tenant is checked (and repaired).
    webhook_watch_seconds: float = 300.0
    # How long a PUT or POST /tenants/{tenant}/webhook waits for Lucca to register the endpoint.
    webhook_register_timeout_seconds: float = 20.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        keys = tuple(
            Secret(k.strip()) for k in _required(env, "SECRETS_KEY").split(",") if k.strip()
        )
        template = env.get("LUCCA_URL_TEMPLATE", "").strip() or DEFAULT_LUCCA_URL_TEMPLATE
        if "{subdomain}" not in template:
            raise SettingsError("LUCCA_URL_TEMPLATE must contain {subdomain}")
        sentinels, master = _redis_sentinel(env)
        retention = int(_number(env, "RUN_RETENTION_SECONDS", 30 * 24 * 3600))
        return cls(
            redis_url=_required(env, "REDIS_URL"),
            admin_token=Secret(_admin_token(env)),
            secrets_keys=keys,
            redis_sentinels=sentinels,
            redis_sentinel_master=master,
            lucca_url_template=template,
            allow_http_elevo=_bool(env, "ALLOW_HTTP_ELEVO", False),
            elevo_allowed_networks=_networks(env, "ELEVO_ALLOWED_NETWORKS"),
            port=int(_number(env, "PORT", 8000)),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            user_cooldown_seconds=_number(env, "USER_COOLDOWN_SECONDS", 2.0),
            lucca_batch_window_seconds=_number(env, "LUCCA_BATCH_WINDOW_SECONDS", 0.002),
            lucca_batch_hold_seconds=_number(env, "LUCCA_BATCH_HOLD_SECONDS", 0.05),
            lucca_batch_busy_window_seconds=_number(env, "LUCCA_BATCH_BUSY_WINDOW_SECONDS", 0.02),
            runs_worker_nice=int(_number(env, "RUNS_WORKER_NICE", 10)),
            worker_max_jobs=int(_number(env, "WORKER_MAX_JOBS", 200)),
            worker_poll_delay_seconds=_number(env, "WORKER_POLL_DELAY_SECONDS", 0.01),
            worker_dead_after_seconds=_number(env, "WORKER_DEAD_AFTER_SECONDS", 20.0),
            http_timeout_seconds=_number(env, "HTTP_TIMEOUT_SECONDS", 10.0),
            elevo_stall_pause_seconds=_number(env, "ELEVO_STALL_PAUSE_SECONDS", 10.0),
            elevo_concurrency=int(_number(env, "ELEVO_CONCURRENCY", 16)),
            request_header_timeout_seconds=_number(env, "REQUEST_HEADER_TIMEOUT_SECONDS", 10.0),
            request_body_timeout_seconds=_number(env, "REQUEST_BODY_TIMEOUT_SECONDS", 20.0),
            sync_job_timeout_seconds=_number(env, "SYNC_JOB_TIMEOUT_SECONDS", 30.0),
            step_job_timeout_seconds=_number(env, "STEP_JOB_TIMEOUT_SECONDS", 60.0),
            run_stall_seconds=_number(env, "RUN_STALL_SECONDS", 600.0),
            webhook_dedupe_seconds=int(_number(env, "WEBHOOK_DEDUPE_SECONDS", 7 * 24 * 3600)),
            webhook_events_per_minute=int(_number(env, "WEBHOOK_EVENTS_PER_MINUTE", 120)),
            run_retention_seconds=retention,
            webhook_run_retention_seconds=int(
                _number(env, "WEBHOOK_RUN_RETENTION_SECONDS", min(WEBHOOK_RUN_DAYS_S, retention))
            ),
            lucca_budget_override=int(_number(env, "LUCCA_BUDGET_OVERRIDE", 0)) or None,
            lucca_budget_window_seconds=_number(env, "LUCCA_BUDGET_WINDOW_SECONDS", 60.0),
            lucca_budget_margin_seconds=_number(env, "LUCCA_BUDGET_MARGIN_SECONDS", 1.0),
            lucca_live_reserve=_number(env, "LUCCA_LIVE_RESERVE", 0.2),
            worker_metrics_port=int(_number(env, "WORKER_METRICS_PORT", 9101)),
            worker_metrics_host=env.get("WORKER_METRICS_HOST", "").strip() or "127.0.0.1",
            session_key=_session_key(env),
            public_url=_public_url(env),
            console_session_seconds=int(_number(env, "CONSOLE_SESSION_SECONDS", 8 * 3600)),
            lucca_token_url=env.get("LUCCA_TOKEN_URL", "").strip() or DEFAULT_LUCCA_TOKEN_URL,
            webhook_watch_seconds=_number(env, "WEBHOOK_WATCH_SECONDS", 300.0),
            webhook_register_timeout_seconds=_number(env, "WEBHOOK_REGISTER_TIMEOUT_SECONDS", 20.0),
        )

    def __post_init__(self) -> None:
        if self.lucca_budget_window_seconds <= 0:
            raise SettingsError("LUCCA_BUDGET_WINDOW_SECONDS must be above 0")
        if self.elevo_concurrency < 1:
            raise SettingsError("ELEVO_CONCURRENCY must be at least 1")
        if self.worker_dead_after_seconds <= 0:
            raise SettingsError("WORKER_DEAD_AFTER_SECONDS must be above 0")
        if not 0 < self.webhook_run_retention_seconds <= self.run_retention_seconds:
            raise SettingsError(
                "WEBHOOK_RUN_RETENTION_SECONDS must be above 0 and at most RUN_RETENTION_SECONDS"
                f" ({self.run_retention_seconds}), not {self.webhook_run_retention_seconds}"
            )
        if self.lucca_live_reserve >= 1:
            raise SettingsError("LUCCA_LIVE_RESERVE must be below 1: background work needs some")

    def egress_policy(self) -> EgressPolicy:
        """Where tenant-configured URLs may lead: public addresses, loopback too when
        ALLOW_HTTP_ELEVO is true, and ELEVO_ALLOWED_NETWORKS."""
        return EgressPolicy(
            allow_loopback=self.allow_http_elevo, allowed_networks=self.elevo_allowed_networks
        )

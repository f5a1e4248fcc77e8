"""A tenant's configuration as the sync uses it (the admin API's body, validated)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

from app.secret import Secret

LuccaDomain = Literal["ilucca.net", "ilucca-test.net", "ilucca-demo.net", "ilucca.ch"]
LUCCA_DOMAINS: Final[tuple[str, ...]] = get_args(LuccaDomain)
DEFAULT_LUCCA_DOMAIN: Final[LuccaDomain] = "ilucca.net"
DEFAULT_SKIP_FIELD: Final = "e_skip_elevo_sync"
DEFAULT_TIMEZONE: Final = "Europe/Paris"
# A config without `nightly_at` runs its nightly reconciliation at a minute of this window,
# derived from the tenant's name (`default_nightly_at`): a fleet's runs spread over the night
# instead of all starting at one minute.
NIGHTLY_WINDOW_START_MINUTE: Final = 60  # 01:00
NIGHTLY_WINDOW_MINUTES: Final = 240  # to 04:59
DEFAULT_LUCCA_REQUESTS_PER_MINUTE: Final = 40
DEFAULT_ALERTS_FAILED_RUNS: Final = 3


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """When a reconciliation holds its suspensions for an operator to confirm."""

    # Both must be exceeded: more than this share of active managed profiles...
    max_suspend_ratio: float = 0.10
    # ...and more than this many profiles.
    max_suspend_count: int = 5


@dataclass(frozen=True, slots=True)
class LuccaOAuth:
    """An OAuth 2 client of Lucca's current API (client credentials): it serves only the
    webhook endpoints, events and deliveries; employees are still read with the v3 API key."""

    client_id: str
    client_secret: Secret


@dataclass(frozen=True, slots=True)
class TenantConfig:
    tenant: str
    lucca_subdomain: str
    lucca_api_key: Secret
    elevo_scim_url: str
    elevo_token: Secret
    lucca_domain: LuccaDomain = DEFAULT_LUCCA_DOMAIN
    # Every listed secret is accepted (rotation); the first is the current one.
    webhook_secrets: tuple[Secret, ...] = ()
    skip_field: str = DEFAULT_SKIP_FIELD
    # Elevo custom field name -> Lucca v3 field path.
    custom_fields: Mapping[str, str] = field(default_factory=dict)
    timezone: str = DEFAULT_TIMEZONE
    # Local time "HH:MM" of the nightly reconciliation; "" (omitted) takes the tenant's own
    # minute of the night window (`default_nightly_at`).
    nightly_at: str = ""
    guard: GuardConfig = field(default_factory=GuardConfig)
    # This sync's share of the customer's 50 requests per minute.
    lucca_requests_per_minute: int = DEFAULT_LUCCA_REQUESTS_PER_MINUTE
    # Seconds between `changes` polls; None for a tenant whose webhooks are trusted alone.
    poll_interval_seconds: int | None = None
    # Where the tenant's alerts go (app/service/alerts.py), signed with `alerts_secret`; None
    # for no alerts. A URL always comes with a secret.
    alerts_url: str | None = None
    alerts_secret: Secret | None = None
    # This many failed runs in a row raise a "failing_runs" alert.
    alerts_failed_runs: int = DEFAULT_ALERTS_FAILED_RUNS
    # None: the webhook endpoint is registered by hand in Lucca, its secret pasted here.
    lucca_oauth: LuccaOAuth | None = None

    def __post_init__(self) -> None:
        if not self.nightly_at:  # frozen: the one place a default is filled in
            object.__setattr__(self, "nightly_at", default_nightly_at(self.tenant))


def default_nightly_at(tenant: str) -> str:
    """The nightly time of a tenant whose config names none: a minute of 01:00-04:59 taken
    from a hash of its name, the same in every process and release (not Python's `hash`,
    which is salted per process), so that 1,000 tenants do not all start their full run in
    one minute (docs/scaling.md)."""
    digest = hashlib.sha256(tenant.encode()).digest()
    minute = NIGHTLY_WINDOW_START_MINUTE + int.from_bytes(digest[:8]) % NIGHTLY_WINDOW_MINUTES
    return f"{minute // 60:02d}:{minute % 60:02d}"

"""A tenant's configuration document: the admin API's PUT body and GET answer, and the shape the
store keeps (secrets encrypted). msgspec Structs, pure, no I/O.

The tenant body (service.md), defaults in app/core/tenant.py:

    {"lucca": {"subdomain": "acme", "domain": "ilucca.net",
               "api_key": "...", "webhook_secret": "..." | [...]},
     "elevo": {"scim_url": "https://...", "token": "..."},
     "skip_field": ..., "custom_fields": {"<Elevo name>": "<Lucca v3 path>"}, "timezone": ...,
     "nightly_at": "HH:MM", "guard": {"max_suspend_ratio": ..., "max_suspend_count": ...},
     "lucca_requests_per_minute": 1..50, "poll_interval_seconds": null | 30..86400,
     "alerts_url": null | "https://...", "alerts_secret": "...", "alerts_failed_runs": 1..100}

A PUT replaces the config, except for secrets: an omitted secret, or one sent as "***" (what a
GET shows), keeps the stored value. `webhook_secret: null` (or `[]`) removes the webhook secrets;
the required secrets cannot be removed; `alerts_secret: null` removes it, which only a config
without `alerts_url` may do (an alerts URL needs its secret). An optional non-secret key sent
as null takes its default; `nightly_at`'s default is the tenant's own minute of 01:00-04:59
(app/core/tenant.py `default_nightly_at`).
The subdomain is rejected, not lowercased, when it holds uppercase letters.

Errors are `InvalidDocument`s (app/schemas/errors.py) whose message names the path
(`... - at `$.lucca.subdomain``) and never a value. The field types, the secret checks and the
nested bodies (`lucca`, `elevo`, `guard`) are in app/schemas/tenant_parts.py.
"""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from app.clients.egress import EgressPolicy
from app.core.tenant import GuardConfig, LuccaDomain, LuccaOAuth, TenantConfig
from app.schemas.common import (
    FIELD_CODE_PATTERN,
    FIELD_PATH_PATTERN,
    NIGHTLY_AT_PATTERN,
    TENANT_RE,
    convert,
    loads,
    require,
    whole,
)
from app.schemas.errors import InvalidDocument, InvalidName
from app.schemas.tenant_parts import (
    AlertsUrl,
    CustomFields,
    ElevoBody,
    FieldCode,
    GuardBody,
    LuccaBody,
    NightlyAt,
    OAuthBody,
    SecretText,
    Subdomain,
    Timezone,
    check_secret,
)
from app.schemas.urls import alerts_url, scim_url
from app.secret import REDACTED, Secret

MAX_LUCCA_REQUESTS_PER_MINUTE: Final = 50  # Lucca's budget per customer
MIN_POLL_INTERVAL_SECONDS: Final = 30
# Longer than a day adds nothing: the nightly reconciliation runs daily anyway.
MAX_POLL_INTERVAL_SECONDS: Final = 86_400
MAX_ALERTS_FAILED_RUNS: Final = 100


class TenantBody(Struct, forbid_unknown_fields=True):
    """A tenant's config. lucca.api_key and elevo.token are required when the tenant is
    created; an omitted secret keeps its stored value."""

    lucca: LuccaBody
    elevo: ElevoBody
    skip_field: FieldCode | None = None
    custom_fields: CustomFields | None = None
    timezone: Timezone | None = None
    nightly_at: NightlyAt | None = None
    guard: GuardBody | None = None
    lucca_requests_per_minute: (
        Annotated[int, Meta(ge=1, le=MAX_LUCCA_REQUESTS_PER_MINUTE)] | None
    ) = None
    poll_interval_seconds: (
        Annotated[int, Meta(ge=MIN_POLL_INTERVAL_SECONDS, le=MAX_POLL_INTERVAL_SECONDS)] | None
    ) = None
    alerts_url: AlertsUrl | None = None
    alerts_secret: SecretText | UnsetType | None = UNSET
    alerts_failed_runs: Annotated[int, Meta(ge=1, le=MAX_ALERTS_FAILED_RUNS)] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.alerts_secret, str):
            check_secret(self.alerts_secret, "alerts_secret")
        if self.skip_field is not None:
            require(
                whole(FIELD_CODE_PATTERN, self.skip_field),
                "`skip_field` must be a Lucca field code of letters, digits and '_'",
            )
        if self.nightly_at is not None:
            require(
                whole(NIGHTLY_AT_PATTERN, self.nightly_at),
                "`nightly_at` must be a local time 'HH:MM', e.g. '02:00'",
            )
        # Membership, not ZoneInfo(value): a name is never turned into a file path here.
        require(
            self.timezone is None or self.timezone in _zones(),
            "`timezone` must be an IANA time zone, e.g. 'Europe/Paris'",
        )
        for name, path in (self.custom_fields or {}).items():
            # The name ends up inside a SCIM filter `[name eq "..."]`: no quote may break out.
            require(
                bool(name.strip()) and name.isprintable(),
                "`custom_fields`: an Elevo custom field name must be printable characters "
                "without quotes or backslashes",
            )
            require(
                whole(FIELD_PATH_PATTERN, path),
                "`custom_fields`: a value must be a Lucca v3 field path such as "
                "'legalEntity.name' or 'extendedData.e_cost_center'",
            )


def validate_tenant_name(tenant: str) -> str:
    """The name itself; `InvalidName` for a name that cannot be stored (it names no tenant)."""
    if not TENANT_RE.fullmatch(tenant):
        raise InvalidName(
            "no such tenant: a tenant name is 1 to 63 characters of a-z, 0-9 and '-', "
            "starting with a letter or digit"
        )
    return tenant


def parse_tenant(
    tenant: str,
    body: bytes | object,
    *,
    existing: TenantConfig | None,
    allow_http_elevo: bool,
    egress: EgressPolicy | None,
) -> TenantConfig:
    """Validate a PUT body (raw bytes, or decoded JSON) into the config to store; `existing`
    supplies omitted secrets; `egress` judges a SCIM URL's host that spells an address (None:
    not judged, for a stored config read back, which every connection judges)."""
    validate_tenant_name(tenant)
    parsed = convert(loads(body) if isinstance(body, bytes) else body, TenantBody)
    lucca, elevo = parsed.lucca, parsed.elevo
    alerts_secret = _alerts_secret(parsed, existing)
    return TenantConfig(
        tenant=tenant,
        lucca_subdomain=lucca.subdomain,
        lucca_api_key=_kept_secret(
            lucca.api_key, "$.lucca.api_key", existing.lucca_api_key if existing else None
        ),
        webhook_secrets=_webhook_secrets(
            lucca.webhook_secret, existing.webhook_secrets if existing else ()
        ),
        elevo_scim_url=scim_url(elevo.scim_url, allow_http=allow_http_elevo, egress=egress),
        elevo_token=_kept_secret(
            elevo.token, "$.elevo.token", existing.elevo_token if existing else None
        ),
        **_optional_settings(
            parsed, existing, alerts_secret, allow_http_elevo=allow_http_elevo, egress=egress
        ),
    )


def _alerts_secret(parsed: TenantBody, existing: TenantConfig | None) -> Secret | None:
    alerts_secret = _optional_secret(
        parsed.alerts_secret, existing.alerts_secret if existing else None
    )
    if parsed.alerts_url is not None and alerts_secret is None:
        raise InvalidDocument("$.alerts_secret is required with alerts_url (it signs the alerts)")
    return alerts_secret


def _optional_settings(
    parsed: TenantBody,
    existing: TenantConfig | None,
    alerts_secret: Secret | None,
    *,
    allow_http_elevo: bool,
    egress: EgressPolicy | None,
) -> dict[str, Any]:
    """The optional settings sent, as `TenantConfig` keywords; one left out takes its default."""
    return _given(
        lucca_domain=parsed.lucca.domain,
        skip_field=parsed.skip_field,
        custom_fields=parsed.custom_fields,
        timezone=parsed.timezone,
        nightly_at=parsed.nightly_at,
        guard=None if parsed.guard is None else GuardConfig(**_given(**_fields(parsed.guard))),
        lucca_requests_per_minute=parsed.lucca_requests_per_minute,
        poll_interval_seconds=parsed.poll_interval_seconds,
        alerts_url=None
        if parsed.alerts_url is None
        else alerts_url(parsed.alerts_url, allow_http=allow_http_elevo, egress=egress),
        alerts_secret=alerts_secret,
        alerts_failed_runs=parsed.alerts_failed_runs,
        lucca_oauth=_oauth(parsed.lucca.oauth, existing.lucca_oauth if existing else None),
    )


def _kept_secret(value: str | UnsetType | None, path: str, stored: Secret | None) -> Secret:
    if isinstance(value, str) and value != REDACTED:
        return Secret(value)
    if stored is None:
        raise InvalidDocument(f"{path} is required")
    return stored


def _optional_secret(value: str | UnsetType | None, stored: Secret | None) -> Secret | None:
    """An optional secret: omitted or "***" keeps the stored one, null removes it."""
    if value is UNSET or value == REDACTED:
        return stored
    return None if value is None else Secret(value)


def _webhook_secrets(
    value: str | list[str] | UnsetType | None, stored: tuple[Secret, ...]
) -> tuple[Secret, ...]:
    if value is UNSET or value == REDACTED:
        return stored
    if isinstance(value, str):
        return (Secret(value),)
    if value and all(item == REDACTED for item in value):
        return stored
    return tuple(Secret(item) for item in value or ())


def _oauth(value: OAuthBody | UnsetType | None, stored: LuccaOAuth | None) -> LuccaOAuth | None:
    if value is UNSET:
        return stored
    if value is None:
        return None
    secret = _kept_secret(
        value.client_secret,
        "$.lucca.oauth.client_secret",
        stored.client_secret if stored else None,
    )
    return LuccaOAuth(client_id=value.client_id, client_secret=secret)


def _fields(struct: Struct) -> dict[str, Any]:
    return msgspec.structs.asdict(struct)


def _given(**values: Any) -> dict[str, Any]:
    """The values sent; a key left out takes the dataclass's default (app/core/tenant.py)."""
    return {name: value for name, value in values.items() if value is not None}


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


# -- the GET answer (and the stored document, before its secrets are encrypted) --

Redacted = Literal["***"]  # REDACTED, as a type


class OAuthView(Struct):
    client_id: str
    client_secret: Redacted


class LuccaView(Struct):
    subdomain: Subdomain
    domain: LuccaDomain
    api_key: Redacted
    webhook_secret: Redacted | list[Redacted] | None
    oauth: OAuthView | UnsetType = UNSET


class ElevoView(Struct):
    scim_url: str
    token: Redacted


class GuardView(Struct):
    max_suspend_ratio: float
    max_suspend_count: int


class TenantView(Struct):
    """The stored config, every secret shown as "***"."""

    lucca: LuccaView
    elevo: ElevoView
    skip_field: str
    custom_fields: dict[str, str]
    timezone: str
    nightly_at: str
    guard: GuardView
    lucca_requests_per_minute: int
    poll_interval_seconds: int | None
    alerts_url: str | None
    alerts_secret: Redacted | None
    alerts_failed_runs: int


def tenant_view(config: TenantConfig) -> dict[str, Any]:
    """The stored config in the PUT body's shape, every secret shown as "***".

    Sent back unchanged as a PUT body, it keeps every stored secret.
    """
    webhook: Redacted | list[Redacted] | None = None
    if len(config.webhook_secrets) == 1:
        webhook = REDACTED
    elif config.webhook_secrets:
        webhook = [REDACTED] * len(config.webhook_secrets)
    view = TenantView(
        lucca=LuccaView(
            subdomain=config.lucca_subdomain,
            domain=config.lucca_domain,
            api_key=REDACTED,
            webhook_secret=webhook,
            oauth=UNSET
            if config.lucca_oauth is None
            else OAuthView(client_id=config.lucca_oauth.client_id, client_secret=REDACTED),
        ),
        elevo=ElevoView(scim_url=config.elevo_scim_url, token=REDACTED),
        skip_field=config.skip_field,
        custom_fields=dict(config.custom_fields),
        timezone=config.timezone,
        nightly_at=config.nightly_at,
        guard=GuardView(
            max_suspend_ratio=config.guard.max_suspend_ratio,
            max_suspend_count=config.guard.max_suspend_count,
        ),
        lucca_requests_per_minute=config.lucca_requests_per_minute,
        poll_interval_seconds=config.poll_interval_seconds,
        alerts_url=config.alerts_url,
        alerts_secret=REDACTED if config.alerts_secret is not None else None,
        alerts_failed_runs=config.alerts_failed_runs,
    )
    view_document: dict[str, Any] = msgspec.to_builtins(view)
    return view_document

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
as null takes its default.
The subdomain is rejected, not lowercased, when it holds uppercase letters.

Errors are `InvalidDocument`s (app/schemas/errors.py) whose message names the path
(`... - at `$.lucca.subdomain``) and never a value.
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
    FIELD_NAME_PATTERN,
    FIELD_PATH_PATTERN,
    NIGHTLY_AT_PATTERN,
    OAUTH_CLIENT_ID_PATTERN,
    SCIM_URL_PATTERN,
    SECRET_PATTERN,
    SUBDOMAIN_PATTERN,
    TENANT_PATTERN,
    TENANT_RE,
    convert,
    loads,
    require,
    whole,
)
from app.schemas.errors import InvalidDocument, InvalidName
from app.schemas.urls import alerts_url, scim_url
from app.secret import REDACTED, Secret

MAX_LUCCA_REQUESTS_PER_MINUTE: Final = 50  # Lucca's budget per customer
MIN_POLL_INTERVAL_SECONDS: Final = 30
# Longer than a day adds nothing: the nightly reconciliation runs daily anyway.
MAX_POLL_INTERVAL_SECONDS: Final = 86_400
MAX_SECRET_LENGTH: Final = 4096
MAX_CUSTOM_FIELDS: Final = 100
MAX_FIELD_NAME_LENGTH: Final = 128
MAX_ALERTS_FAILED_RUNS: Final = 100
SecretText = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_SECRET_LENGTH,
        pattern=SECRET_PATTERN,
        description='A credential; "***" (what a GET shows) or omitted keeps the stored one.',
        extra_json_schema={"writeOnly": True},
    ),
]
TenantName = Annotated[str, Meta(pattern=TENANT_PATTERN)]
Subdomain = Annotated[
    str,
    Meta(
        pattern=SUBDOMAIN_PATTERN,
        description="One lowercase DNS label, never a URL or a host (SSRF).",
    ),
]
FieldCode = Annotated[str, Meta(pattern=FIELD_CODE_PATTERN)]
FieldName = Annotated[
    str, Meta(min_length=1, max_length=MAX_FIELD_NAME_LENGTH, pattern=FIELD_NAME_PATTERN)
]
FieldPath = Annotated[
    str,
    Meta(
        pattern=FIELD_PATH_PATTERN,
        description="A Lucca v3 field path, e.g. 'extendedData.e_cost_center'.",
    ),
]
CustomFields = Annotated[
    dict[FieldName, FieldPath],
    Meta(
        max_length=MAX_CUSTOM_FIELDS,
        description="Elevo custom field name -> Lucca v3 field path.",
    ),
]
NightlyAt = Annotated[str, Meta(pattern=NIGHTLY_AT_PATTERN)]
Timezone = Annotated[str, Meta(description="An IANA time zone.")]
ScimUrl = Annotated[
    str,
    Meta(
        pattern=SCIM_URL_PATTERN,
        description=(
            "Absolute https URL with a host and no user info, query or fragment "
            "(http only with ALLOW_HTTP_ELEVO), whose host is no loopback, private, link-local "
            "or other internal address in any form, and resolves to none (loopback admitted "
            "with ALLOW_HTTP_ELEVO, the networks of ELEVO_ALLOWED_NETWORKS)."
        ),
    ),
]
AlertsUrl = Annotated[
    str,
    Meta(
        pattern=SCIM_URL_PATTERN,
        description=(
            "Where the tenant's alerts are POSTed, signed with alerts_secret: the Elevo SCIM "
            "URL's rules (https, a public host; http and loopback only with ALLOW_HTTP_ELEVO)."
        ),
    ),
]


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _check_secret(value: str, field: str) -> None:
    require(bool(value.strip()), f"`{field}` must not be empty")
    # Secrets end up in HTTP headers, where a control character is an injection or an error.
    require(not _has_control(value), f"`{field}` must not contain control characters")


def _check_header_secret(value: str, field: str) -> None:
    """A credential sent in an HTTP header: printable ASCII, no space at either end (a header
    cannot carry the rest, and a pasted space would make every call fail later)."""
    _check_secret(value, field)
    if value == REDACTED:
        return
    require(
        value == value.strip(), f"`{field}` must not start or end with spaces (a pasted extra?)"
    )
    require(
        value.isascii() and value.isprintable(),
        f"`{field}` must be printable ASCII characters: it travels in an HTTP header",
    )


class OAuthBody(Struct, forbid_unknown_fields=True):
    """An OAuth client of Lucca's current API, for the webhook endpoint (issue 15)."""

    client_id: Annotated[str, Meta(pattern=OAUTH_CLIENT_ID_PATTERN)]
    client_secret: SecretText | UnsetType = UNSET

    def __post_init__(self) -> None:
        require(
            whole(OAUTH_CLIENT_ID_PATTERN, self.client_id),
            "`oauth.client_id` must be 1 to 200 letters, digits and '._:-'",
        )
        if isinstance(self.client_secret, str):
            _check_secret(self.client_secret, "oauth.client_secret")


class LuccaBody(Struct, forbid_unknown_fields=True):
    subdomain: Subdomain
    domain: LuccaDomain | None = None
    api_key: SecretText | UnsetType | None = UNSET
    webhook_secret: Annotated[
        SecretText | list[SecretText] | UnsetType | None,
        Meta(description="One secret or several (rotation), each once; null removes them."),
    ] = UNSET
    oauth: Annotated[
        OAuthBody | UnsetType | None,
        Meta(
            description="Lucca OAuth client (webhook endpoints, events); omitted keeps the "
            "stored one, null removes it."
        ),
    ] = UNSET

    def __post_init__(self) -> None:
        require(
            whole(SUBDOMAIN_PATTERN, self.subdomain),
            "`subdomain` must be a lowercase DNS label (a-z, 0-9 and inner '-', at most 63 "
            "characters), e.g. 'acme' for acme.ilucca.net",
        )
        require(self.api_key is not None, "`api_key` is required")
        if isinstance(self.api_key, str):
            _check_header_secret(self.api_key, "api_key")
        secrets = self.webhook_secret
        if isinstance(secrets, str):
            _check_secret(secrets, "webhook_secret")
        elif isinstance(secrets, list) and not all(item == REDACTED for item in secrets):
            # Which stored secret a "***" stands for would be a guess once the list changes.
            require(
                REDACTED not in secrets,
                "`webhook_secret` cannot mix '***' with new secrets: send every secret in clear",
            )
            for secret in secrets:
                _check_secret(secret, "webhook_secret")
            require(len(set(secrets)) == len(secrets), "`webhook_secret` lists a secret twice")


class ElevoBody(Struct, forbid_unknown_fields=True):
    scim_url: ScimUrl
    token: SecretText | UnsetType | None = UNSET

    def __post_init__(self) -> None:
        require(self.token is not None, "`token` is required")
        if isinstance(self.token, str):
            _check_header_secret(self.token, "token")


class GuardBody(Struct, forbid_unknown_fields=True):
    max_suspend_ratio: Annotated[float, Meta(ge=0, le=1)] | None = None
    max_suspend_count: Annotated[int, Meta(ge=0)] | None = None


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
            _check_secret(self.alerts_secret, "alerts_secret")
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
    alerts_secret = _optional_secret(
        parsed.alerts_secret, existing.alerts_secret if existing else None
    )
    if parsed.alerts_url is not None and alerts_secret is None:
        raise InvalidDocument("$.alerts_secret is required with alerts_url (it signs the alerts)")
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
        **_given(
            lucca_domain=lucca.domain,
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
            lucca_oauth=_oauth(lucca.oauth, existing.lucca_oauth if existing else None),
        ),
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

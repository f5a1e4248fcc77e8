"""The admin API's request bodies as msgspec Structs, and their parsing. No I/O.

The tenant body (service.md), defaults in app/core/tenant.py:

    {"lucca": {"subdomain": "acme", "domain": "ilucca.net",
               "api_key": "...", "webhook_secret": "..." | [...]},
     "elevo": {"scim_url": "https://...", "token": "..."},
     "skip_field": ..., "custom_fields": {"<Elevo name>": "<Lucca v3 path>"}, "timezone": ...,
     "nightly_at": "HH:MM", "guard": {"max_suspend_ratio": ..., "max_suspend_count": ...},
     "lucca_requests_per_minute": 1..50, "poll_interval_seconds": null | 30..86400}

A PUT replaces the config, except for secrets: an omitted secret, or one sent as "***" (what a
GET shows), keeps the stored value. `webhook_secret: null` (or `[]`) removes the webhook secrets;
the required secrets cannot be removed. An optional non-secret key sent as null takes its default.
The subdomain is rejected, not lowercased, when it holds uppercase letters.

Errors are `ApiError`s: `bad_json` for a body that is not JSON, `invalid_body` for the rest, with
msgspec's message naming the path (`... - at `$.lucca.subdomain``) and never a value.
"""

from __future__ import annotations

import re
import zoneinfo
from functools import cache
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec
import orjson
from msgspec import UNSET, Meta, Struct, UnsetType

from app.api.errors import ApiError
from app.api.urls import scim_url
from app.core.lucca_user import user_id_of
from app.core.tenant import GuardConfig, LuccaDomain, TenantConfig
from app.secret import REDACTED, Secret

# Anchored patterns, for msgspec and the OpenAPI document alike. msgspec applies them with
# `re.search`, where `$` also matches before a final newline: `_whole` checks them again.
TENANT_PATTERN: Final = "^[a-z0-9][a-z0-9-]{0,62}$"
SUBDOMAIN_PATTERN: Final = "^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
FIELD_CODE_PATTERN: Final = "^[A-Za-z0-9_]{1,100}$"
FIELD_PATH_PATTERN: Final = "^[A-Za-z_][A-Za-z0-9_]*(?:\\.[A-Za-z_][A-Za-z0-9_]*){0,7}$"
FIELD_NAME_PATTERN: Final = '^[^"\\\\]+$'
NIGHTLY_AT_PATTERN: Final = "^(?:[01][0-9]|2[0-3]):[0-5][0-9]$"
SECRET_PATTERN: Final = "^[^\\x00-\\x1f\\x7f]*$"  # noqa: S105 - a regex, not a secret
SCIM_URL_PATTERN: Final = "^[hH][tT][tT][pP][sS]?://"
USER_ID_PATTERN: Final = "^0*[1-9][0-9]*$"
RUN_ID_PATTERN: Final = "^[0-9]{8}T[0-9]{6}-[0-9a-f]{6}$"

TENANT_RE: Final = re.compile(TENANT_PATTERN)
RUN_ID_RE: Final = re.compile(RUN_ID_PATTERN)

MAX_LUCCA_REQUESTS_PER_MINUTE: Final = 50  # Lucca's budget per customer
MIN_POLL_INTERVAL_SECONDS: Final = 30
# Longer than a day adds nothing: the nightly reconciliation runs daily anyway.
MAX_POLL_INTERVAL_SECONDS: Final = 86_400
MAX_SECRET_LENGTH: Final = 4096
MAX_CUSTOM_FIELDS: Final = 100
MAX_FIELD_NAME_LENGTH: Final = 128
MAX_USERS_PER_REQUEST: Final = 10_000

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
            "(http only with ALLOW_HTTP_ELEVO)."
        ),
    ),
]
UserId = Annotated[int, Meta(ge=1)] | Annotated[str, Meta(pattern=USER_ID_PATTERN)]


def _require(condition: bool, message: str) -> None:
    """Refuse from a `__post_init__`: msgspec turns the ValueError into an error at the path."""
    if not condition:
        raise ValueError(message)


def _whole(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _check_secret(value: str, field: str) -> None:
    _require(bool(value.strip()), f"`{field}` must not be empty")
    # Secrets end up in HTTP headers, where a control character is an injection or an error.
    _require(not _has_control(value), f"`{field}` must not contain control characters")


class LuccaBody(Struct, forbid_unknown_fields=True):
    subdomain: Subdomain
    domain: LuccaDomain | None = None
    api_key: SecretText | UnsetType | None = UNSET
    webhook_secret: Annotated[
        SecretText | list[SecretText] | UnsetType | None,
        Meta(description="One secret or several (rotation), each once; null removes them."),
    ] = UNSET

    def __post_init__(self) -> None:
        _require(
            _whole(SUBDOMAIN_PATTERN, self.subdomain),
            "`subdomain` must be a lowercase DNS label (a-z, 0-9 and inner '-', at most 63 "
            "characters), e.g. 'acme' for acme.ilucca.net",
        )
        _require(self.api_key is not None, "`api_key` is required")
        if isinstance(self.api_key, str):
            _check_secret(self.api_key, "api_key")
        secrets = self.webhook_secret
        if isinstance(secrets, str):
            _check_secret(secrets, "webhook_secret")
        elif isinstance(secrets, list) and not all(item == REDACTED for item in secrets):
            # Which stored secret a "***" stands for would be a guess once the list changes.
            _require(
                REDACTED not in secrets,
                "`webhook_secret` cannot mix '***' with new secrets: send every secret in clear",
            )
            for secret in secrets:
                _check_secret(secret, "webhook_secret")
            _require(len(set(secrets)) == len(secrets), "`webhook_secret` lists a secret twice")


class ElevoBody(Struct, forbid_unknown_fields=True):
    scim_url: ScimUrl
    token: SecretText | UnsetType | None = UNSET

    def __post_init__(self) -> None:
        _require(self.token is not None, "`token` is required")
        if isinstance(self.token, str):
            _check_secret(self.token, "token")


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

    def __post_init__(self) -> None:
        if self.skip_field is not None:
            _require(
                _whole(FIELD_CODE_PATTERN, self.skip_field),
                "`skip_field` must be a Lucca field code of letters, digits and '_'",
            )
        if self.nightly_at is not None:
            _require(
                _whole(NIGHTLY_AT_PATTERN, self.nightly_at),
                "`nightly_at` must be a local time 'HH:MM', e.g. '02:00'",
            )
        # Membership, not ZoneInfo(value): a name is never turned into a file path here.
        _require(
            self.timezone is None or self.timezone in _zones(),
            "`timezone` must be an IANA time zone, e.g. 'Europe/Paris'",
        )
        for name, path in (self.custom_fields or {}).items():
            # The name ends up inside a SCIM filter `[name eq "..."]`: no quote may break out.
            _require(
                bool(name.strip()) and name.isprintable(),
                "`custom_fields`: an Elevo custom field name must be printable characters "
                "without quotes or backslashes",
            )
            _require(
                _whole(FIELD_PATH_PATTERN, path),
                "`custom_fields`: a value must be a Lucca v3 field path such as "
                "'legalEntity.name' or 'extendedData.e_cost_center'",
            )


class SyncTrigger(Struct, forbid_unknown_fields=True):
    """{} is a full reconciliation; users and mode exclude each other."""

    mode: Literal["full", "changes"] | UnsetType = UNSET
    users: Annotated[list[UserId], Meta(min_length=1, max_length=MAX_USERS_PER_REQUEST)] | (
        UnsetType
    ) = UNSET
    dry_run: bool = False
    confirm_suspensions: Annotated[
        bool, Meta(description="Releases the suspensions a safety guard holds; mode full only.")
    ] = False

    def __post_init__(self) -> None:
        _require(
            self.users is UNSET or self.mode is UNSET, "send either `users` or `mode`, not both"
        )
        _require(
            not self.confirm_suspensions or self.mode in ("full", UNSET) or self.users is not UNSET,
            "`confirm_suspensions` goes with mode full",
        )
        if self.users is not UNSET:
            _require(
                all(user_id_of({"id": user}) for user in self.users),
                "every user id in `users` must be a positive integer (number or string)",
            )


class RunRequest(Struct, frozen=True, kw_only=True):
    """A valid trigger: the run it asks for."""

    mode: Literal["full", "changes", "users"]
    users: tuple[str, ...] = ()
    dry_run: bool = False
    confirm_suspensions: bool = False


def validate_tenant_name(tenant: str) -> str:
    """The name itself, or `unknown_tenant`: a name that cannot be stored names no tenant."""
    if not TENANT_RE.fullmatch(tenant):
        raise ApiError.unknown_tenant(
            "no such tenant: a tenant name is 1 to 63 characters of a-z, 0-9 and '-', "
            "starting with a letter or digit"
        )
    return tenant


def parse_tenant(
    tenant: str, body: bytes | object, *, existing: TenantConfig | None, allow_http_elevo: bool
) -> TenantConfig:
    """Validate a PUT body (raw bytes, or decoded JSON) into the config to store; `existing`
    supplies omitted secrets."""
    validate_tenant_name(tenant)
    parsed = _convert(_json(body) if isinstance(body, bytes) else body, TenantBody)
    lucca, elevo = parsed.lucca, parsed.elevo
    return TenantConfig(
        tenant=tenant,
        lucca_subdomain=lucca.subdomain,
        lucca_api_key=_kept_secret(
            lucca.api_key, "$.lucca.api_key", existing.lucca_api_key if existing else None
        ),
        webhook_secrets=_webhook_secrets(
            lucca.webhook_secret, existing.webhook_secrets if existing else ()
        ),
        elevo_scim_url=scim_url(elevo.scim_url, allow_http=allow_http_elevo),
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
        ),
    )


def parse_trigger(raw: bytes) -> RunRequest:
    """The run a `POST /sync/{tenant}` body asks for; an empty body is a full run."""
    trigger = _convert(_json(raw) if raw.strip() else {}, SyncTrigger)
    if trigger.users is not UNSET:
        users = tuple(user_id_of({"id": user}) or "" for user in trigger.users)
        return RunRequest(mode="users", users=users, dry_run=trigger.dry_run)
    return RunRequest(
        mode="full" if trigger.mode is UNSET else trigger.mode,
        dry_run=trigger.dry_run,
        confirm_suspensions=trigger.confirm_suspensions,
    )


def _json(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError.bad_json() from None


_T = TypeVar("_T")


def _convert(document: object, into: type[_T]) -> _T:
    try:
        return msgspec.convert(document, into)
    except msgspec.ValidationError as exc:
        raise ApiError.invalid_body(_without_values(str(exc))) from None


_UNKNOWN_FIELD: Final = "Object contains unknown field `"
_AT_PATH: Final = re.compile(r"(.*)( - at `\$[\w.\[\]]*`)", re.DOTALL)


def _without_values(message: str) -> str:
    """msgspec's message, minus the two that quote the caller's text: an enum's value, and an
    unknown key's name (cut short, as the caller may have put anything there)."""
    found = _AT_PATH.fullmatch(message)
    # msgspec names no path for the top level: say it.
    text, where = (found.group(1), found.group(2)) if found else (message, " - at `$`")
    if text.startswith("Invalid enum value"):
        text = "Invalid enum value"
    elif text.startswith(_UNKNOWN_FIELD):
        name = text.removeprefix(_UNKNOWN_FIELD).removesuffix("`")
        text = f"{_UNKNOWN_FIELD}{name[:64]}`"
    return text + where


def _kept_secret(value: str | UnsetType | None, path: str, stored: Secret | None) -> Secret:
    if isinstance(value, str) and value != REDACTED:
        return Secret(value)
    if stored is None:
        raise ApiError.invalid_body(f"{path} is required")
    return stored


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


def _fields(struct: Struct) -> dict[str, Any]:
    return msgspec.structs.asdict(struct)


def _given(**values: Any) -> dict[str, Any]:
    """The values sent; a key left out takes the dataclass's default (app/core/tenant.py)."""
    return {name: value for name, value in values.items() if value is not None}


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())

"""The admin API's tenant body: validation into a `TenantConfig`, and its redacted view. No I/O.

Accepted body (service.md), with the defaults of the optional keys:

    {"lucca": {"subdomain": "acme",              # required, a lowercase DNS label
               "domain": "ilucca.net",           # one of LUCCA_DOMAINS
               "api_key": "...",                 # required secret
               "webhook_secret": "..." | [...]}, # optional secret(s), first = current
     "elevo": {"scim_url": "https://...",        # required, absolute https (http if allowed)
               "token": "..."},                  # required secret
     "skip_field": "e_skip_elevo_sync",
     "custom_fields": {"<Elevo name>": "<Lucca v3 path>"},
     "timezone": "Europe/Paris",
     "nightly_at": "02:00",
     "guard": {"max_suspend_ratio": 0.10, "max_suspend_count": 5},
     "lucca_requests_per_minute": 40,
     "poll_interval_seconds": null}

A PUT replaces the config, except for secrets: an omitted secret, or one sent as "***" (what a
GET shows), keeps the stored value. `webhook_secret: null` (or `[]`) removes the webhook secrets;
the required secrets cannot be removed. An optional non-secret key sent as null takes its default.
The subdomain is rejected, not lowercased, when it holds uppercase letters: the stored value is
then always the one the operator sent. Error messages name the field and never echo a value.
"""

from __future__ import annotations

import ipaddress
import math
import re
import zoneinfo
from collections.abc import Mapping
from functools import cache
from typing import Any, Final
from urllib.parse import urlsplit

from app.core.tenant import (
    DEFAULT_LUCCA_DOMAIN,
    DEFAULT_SKIP_FIELD,
    DEFAULT_TIMEZONE,
    LUCCA_DOMAINS,
    GuardConfig,
    TenantConfig,
)
from app.secret import REDACTED, Secret

TENANT_RE: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
SUBDOMAIN_RE: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
FIELD_CODE_RE: Final = re.compile(r"[A-Za-z0-9_]{1,100}")
PATH_SEGMENT_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NIGHTLY_AT_RE: Final = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")
_HOST_RE: Final = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")

DEFAULT_NIGHTLY_AT: Final = "02:00"
DEFAULT_LUCCA_REQUESTS_PER_MINUTE: Final = 40
MAX_LUCCA_REQUESTS_PER_MINUTE: Final = 50  # Lucca's budget per customer
MIN_POLL_INTERVAL_SECONDS: Final = 30
# Longer than a day adds nothing: the nightly reconciliation runs daily anyway.
MAX_POLL_INTERVAL_SECONDS: Final = 86_400
MAX_SECRET_LENGTH: Final = 4096
MAX_CUSTOM_FIELDS: Final = 100
MAX_PATH_SEGMENTS: Final = 8

_TOP_KEYS: Final = frozenset(
    {
        "lucca",
        "elevo",
        "skip_field",
        "custom_fields",
        "timezone",
        "nightly_at",
        "guard",
        "lucca_requests_per_minute",
        "poll_interval_seconds",
    }
)
_LUCCA_KEYS: Final = frozenset({"subdomain", "domain", "api_key", "webhook_secret"})
_ELEVO_KEYS: Final = frozenset({"scim_url", "token"})
_GUARD_KEYS: Final = frozenset({"max_suspend_ratio", "max_suspend_count"})
_MISSING: Final = object()


class TenantValidationError(ValueError):
    """The tenant name or body is invalid; the message names the field, never a secret."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def validate_tenant_name(tenant: str) -> str:
    if not TENANT_RE.fullmatch(tenant):
        raise TenantValidationError(
            "the tenant name must be 1 to 63 characters of a-z, 0-9 and '-', "
            "starting with a letter or digit"
        )
    return tenant


def parse_tenant(
    tenant: str, body: object, *, existing: TenantConfig | None, allow_http_elevo: bool
) -> TenantConfig:
    """Validate a PUT body into the config to store; `existing` supplies omitted secrets."""
    validate_tenant_name(tenant)
    top = _object(body, "the body", _TOP_KEYS)
    lucca = _object(top.get("lucca", _MISSING), "lucca", _LUCCA_KEYS)
    elevo = _object(top.get("elevo", _MISSING), "elevo", _ELEVO_KEYS)
    return TenantConfig(
        tenant=tenant,
        lucca_subdomain=_subdomain(lucca.get("subdomain", _MISSING)),
        lucca_domain=_lucca_domain(lucca.get("domain")),
        lucca_api_key=_required_secret(
            lucca.get("api_key", _MISSING),
            "lucca.api_key",
            existing.lucca_api_key if existing else None,
        ),
        webhook_secrets=_webhook_secrets(
            lucca.get("webhook_secret", _MISSING), existing.webhook_secrets if existing else ()
        ),
        elevo_scim_url=_scim_url(elevo.get("scim_url", _MISSING), allow_http=allow_http_elevo),
        elevo_token=_required_secret(
            elevo.get("token", _MISSING),
            "elevo.token",
            existing.elevo_token if existing else None,
        ),
        skip_field=_skip_field(top.get("skip_field")),
        custom_fields=_custom_fields(top.get("custom_fields")),
        timezone=_timezone(top.get("timezone")),
        nightly_at=_nightly_at(top.get("nightly_at")),
        guard=_guard(top.get("guard")),
        lucca_requests_per_minute=_int(
            top.get("lucca_requests_per_minute"),
            "lucca_requests_per_minute",
            default=DEFAULT_LUCCA_REQUESTS_PER_MINUTE,
            low=1,
            high=MAX_LUCCA_REQUESTS_PER_MINUTE,
        ),
        poll_interval_seconds=_poll_interval(top.get("poll_interval_seconds")),
    )


def tenant_view(config: TenantConfig) -> dict[str, Any]:
    """The stored config in the PUT body's shape, every secret shown as "***".

    Sent back unchanged as a PUT body, it keeps every stored secret.
    """
    webhook: str | list[str] | None = None
    if len(config.webhook_secrets) == 1:
        webhook = REDACTED
    elif config.webhook_secrets:
        webhook = [REDACTED] * len(config.webhook_secrets)
    return {
        "lucca": {
            "subdomain": config.lucca_subdomain,
            "domain": config.lucca_domain,
            "api_key": REDACTED,
            "webhook_secret": webhook,
        },
        "elevo": {"scim_url": config.elevo_scim_url, "token": REDACTED},
        "skip_field": config.skip_field,
        "custom_fields": dict(config.custom_fields),
        "timezone": config.timezone,
        "nightly_at": config.nightly_at,
        "guard": {
            "max_suspend_ratio": config.guard.max_suspend_ratio,
            "max_suspend_count": config.guard.max_suspend_count,
        },
        "lucca_requests_per_minute": config.lucca_requests_per_minute,
        "poll_interval_seconds": config.poll_interval_seconds,
    }


def _object(
    value: object, field: str, allowed: frozenset[str] | None = None
) -> Mapping[str, object]:
    """A JSON object; with `allowed`, one holding no other key."""
    if value is _MISSING:
        raise TenantValidationError(f"{field} is required")
    if not isinstance(value, dict):
        raise TenantValidationError(f"{field} must be a JSON object")
    unknown = sorted(set(value) - allowed) if allowed is not None else []
    if unknown:
        prefix = "" if field == "the body" else f"{field}."
        # Key names are truncated: they are the caller's text, echoed back.
        names = ", ".join(f"{prefix}{name[:64]}" for name in unknown)
        raise TenantValidationError(f"unknown key(s): {names}")
    return value


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _string(value: object, field: str) -> str:
    if value is _MISSING or value is None:
        raise TenantValidationError(f"{field} is required")
    if not isinstance(value, str):
        raise TenantValidationError(f"{field} must be a string")
    return value


def _subdomain(value: object) -> str:
    subdomain = _string(value, "lucca.subdomain")
    # A label only, never a URL or a host: the Lucca URL is built from it (SSRF).
    if not SUBDOMAIN_RE.fullmatch(subdomain):
        raise TenantValidationError(
            "lucca.subdomain must be a lowercase DNS label (a-z, 0-9 and inner '-', "
            "at most 63 characters), e.g. 'acme' for acme.ilucca.net"
        )
    return subdomain


def _lucca_domain(value: object) -> str:
    if value is None:
        return DEFAULT_LUCCA_DOMAIN
    if value not in LUCCA_DOMAINS:
        raise TenantValidationError(f"lucca.domain must be one of {', '.join(LUCCA_DOMAINS)}")
    assert isinstance(value, str)
    return value


def _secret(value: object, field: str) -> Secret:
    if not isinstance(value, str):
        raise TenantValidationError(f"{field} must be a string")
    if not value.strip():
        raise TenantValidationError(f"{field} must not be empty")
    if len(value) > MAX_SECRET_LENGTH:
        raise TenantValidationError(f"{field} must be at most {MAX_SECRET_LENGTH} characters")
    # Secrets end up in HTTP headers, where a control character is an injection or an error.
    if _has_control(value):
        raise TenantValidationError(f"{field} must not contain control characters")
    return Secret(value)


def _required_secret(value: object, field: str, stored: Secret | None) -> Secret:
    if value is _MISSING or value == REDACTED:
        if stored is None:
            raise TenantValidationError(f"{field} is required")
        return stored
    if value is None:
        raise TenantValidationError(f"{field} is required")
    return _secret(value, field)


def _webhook_secrets(value: object, stored: tuple[Secret, ...]) -> tuple[Secret, ...]:
    field = "lucca.webhook_secret"
    if value is _MISSING or value == REDACTED:
        return stored
    if value is None:
        return ()
    if isinstance(value, str):
        return (_secret(value, field),)
    if not isinstance(value, list):
        raise TenantValidationError(f"{field} must be a string or a list of strings")
    if value and all(item == REDACTED for item in value):
        return stored
    if REDACTED in value:
        # Which stored secret a "***" stands for would be a guess once the list changes.
        raise TenantValidationError(
            f"{field} cannot mix '***' with new secrets: send every secret in clear"
        )
    secrets = tuple(_secret(item, f"{field}[{i}]") for i, item in enumerate(value))
    if len(set(secrets)) != len(secrets):
        raise TenantValidationError(f"{field} lists the same secret twice")
    return secrets


def _scim_url(value: object, *, allow_http: bool) -> str:
    field = "elevo.scim_url"
    raw = _string(value, field)
    schemes = ("https", "http") if allow_http else ("https",)
    expected = "an absolute http(s) URL" if allow_http else "an absolute https URL"
    if _has_control(raw) or any(c.isspace() for c in raw):
        raise TenantValidationError(f"{field} must not contain spaces or control characters")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise TenantValidationError(f"{field} must be {expected}") from None
    if parts.scheme.lower() not in schemes:
        raise TenantValidationError(f"{field} must be {expected}")
    if "@" in parts.netloc:
        raise TenantValidationError(f"{field} must not contain user information")
    if "?" in raw or "#" in raw:
        raise TenantValidationError(f"{field} must not have a query or a fragment")
    host = parts.hostname or ""
    if not _valid_host(host):
        raise TenantValidationError(f"{field} must be {expected} with a host")
    if not allow_http and _internal_address(host):
        # The Elevo token would be sent there: no loopback, private or metadata addresses.
        raise TenantValidationError(f"{field} must not name a private or local address")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    # Without a trailing slash, clients append "/Users" to it as they are.
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


def _internal_address(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost" or host.endswith(".localhost")
    return not address.is_global


def _valid_host(host: str) -> bool:
    if ":" in host:  # an IPv6 literal, brackets already removed by urlsplit
        return bool(re.fullmatch(r"[0-9a-f:.]+", host))
    return bool(_HOST_RE.fullmatch(host)) and ".." not in host


def _skip_field(value: object) -> str:
    if value is None:
        return DEFAULT_SKIP_FIELD
    if not isinstance(value, str) or not FIELD_CODE_RE.fullmatch(value):
        raise TenantValidationError(
            "skip_field must be a Lucca field code of letters, digits and '_', "
            "e.g. 'e_skip_elevo_sync'"
        )
    return value


def _custom_fields(value: object) -> dict[str, str]:
    if value is None:
        return {}
    fields = _object(value, "custom_fields")
    if len(fields) > MAX_CUSTOM_FIELDS:
        raise TenantValidationError(f"custom_fields holds more than {MAX_CUSTOM_FIELDS} fields")
    result: dict[str, str] = {}
    for name, path in fields.items():
        label = f"custom_fields[{name[:64]!r}]"
        if not _valid_field_name(name):
            raise TenantValidationError(
                f"{label}: an Elevo custom field name must be 1 to 128 printable characters "
                "without quotes or backslashes"
            )
        if not isinstance(path, str) or not _valid_path(path):
            raise TenantValidationError(
                f"{label} must be a Lucca v3 field path such as 'legalEntity.name' or "
                "'extendedData.e_cost_center'"
            )
        result[name] = path
    return result


def _valid_field_name(name: str) -> bool:
    # The name ends up inside a SCIM filter `[name eq "..."]`: no quote may break out.
    return (
        bool(name.strip())
        and len(name) <= 128
        and name.isprintable()
        and not ('"' in name or "\\" in name)
    )


def _valid_path(path: str) -> bool:
    segments = path.split(".")
    return len(segments) <= MAX_PATH_SEGMENTS and all(
        PATH_SEGMENT_RE.fullmatch(segment) for segment in segments
    )


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone(value: object) -> str:
    if value is None:
        return DEFAULT_TIMEZONE
    # Membership, not ZoneInfo(value): a name is never turned into a file path here.
    if not isinstance(value, str) or value not in _zones():
        raise TenantValidationError("timezone must be an IANA time zone, e.g. 'Europe/Paris'")
    return value


def _nightly_at(value: object) -> str:
    if value is None:
        return DEFAULT_NIGHTLY_AT
    if not isinstance(value, str) or not NIGHTLY_AT_RE.fullmatch(value):
        raise TenantValidationError("nightly_at must be a local time 'HH:MM', e.g. '02:00'")
    return value


def _guard(value: object) -> GuardConfig:
    if value is None:
        return GuardConfig()
    guard = _object(value, "guard", _GUARD_KEYS)
    defaults = GuardConfig()
    ratio = guard.get("max_suspend_ratio")
    if ratio is None:
        ratio = defaults.max_suspend_ratio
    elif (
        isinstance(ratio, bool)
        or not isinstance(ratio, int | float)
        or not math.isfinite(ratio)
        or not 0 <= ratio <= 1
    ):
        raise TenantValidationError("guard.max_suspend_ratio must be a number from 0 to 1")
    count = _int(
        guard.get("max_suspend_count"),
        "guard.max_suspend_count",
        default=defaults.max_suspend_count,
        low=0,
        high=None,
    )
    return GuardConfig(max_suspend_ratio=float(ratio), max_suspend_count=count)


def _int(value: object, field: str, *, default: int, low: int, high: int | None) -> int:
    if value is None:
        return default
    # bool is an int in Python, not in the body's JSON.
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise TenantValidationError(f"{field} must be an integer {bounds}")
    return value


def _poll_interval(value: object) -> int | None:
    if value is None:
        return None
    return _int(
        value,
        "poll_interval_seconds",
        default=MIN_POLL_INTERVAL_SECONDS,
        low=MIN_POLL_INTERVAL_SECONDS,
        high=MAX_POLL_INTERVAL_SECONDS,
    )

"""The console's settings page: a tenant's configuration as a form (secrets masked), saved
through the same validation and use case as `PUT /tenants/{tenant}`, and "Test connection"
with one Lucca request (within the tenant's budget) or one SCIM read."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.clients.errors import ElevoAuthError, LuccaAuthError, UpstreamError
from app.core.errors import SyncError
from app.schemas.errors import InvalidDocument
from app.schemas.tenant import tenant_view
from app.schemas.tenant_update import DESTINATIONS, SECRETS, parse_tenant_update
from app.secret import REDACTED
from app.service.access import Action, Principal
from app.service.context import build_context
from app.service.errors import Forbidden
from app.service.resources import Resources
from app.service.tenants import configure_tenant, replaceable_config
from app.store.budget import Priority

log = logging.getLogger(__name__)

# What an operator may not change: the secrets, and where they are sent.
SECRET_FIELDS = (*SECRETS, *sorted(DESTINATIONS))
NUMBER_FIELDS = {
    "guard.max_suspend_ratio": float,
    "guard.max_suspend_count": int,
    "lucca_requests_per_minute": int,
    "poll_interval_seconds": int,
    "alerts_failed_runs": int,
}
OPTIONAL_FIELDS = {
    "lucca.domain",
    "lucca.webhook_secret",
    "alerts_url",
    "alerts_secret",
    *NUMBER_FIELDS,
}
# Where an error is: a schema error names `$.path`; a refusal of the scope names `path`.
_PATHS = (re.compile(r"\$\.([a-z_.]+)"), re.compile(r"`([a-z_.]+)`"))


@dataclass(frozen=True, slots=True)
class SettingsForm:
    """The form's values by dotted name (secrets as `***`), and errors by the same names
    ("" for an error of no one field)."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    saved: bool = False


def _flatten(document: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for name, value in document.items():
        if name == "custom_fields":
            flat[name] = "\n".join(f"{k} = {v}" for k, v in value.items())
        elif isinstance(value, Mapping):
            flat |= _flatten(value, f"{prefix}{name}.")
        elif isinstance(value, list):
            flat[f"{prefix}{name}"] = REDACTED  # several webhook secrets, all kept
        else:
            flat[f"{prefix}{name}"] = "" if value is None else str(value)
    return flat


async def settings_form(res: Resources, tenant: str) -> SettingsForm | None:
    config = await replaceable_config(res, tenant)
    return None if config is None else SettingsForm(_flatten(tenant_view(config)))


def _document(values: Mapping[str, str], kept: Mapping[str, Any]) -> dict[str, Any]:
    """The PUT body the form stands for; a secret left as `***` keeps what is stored."""
    document: dict[str, Any] = {}
    for name, raw in values.items():
        text = raw.strip()
        value: Any = text
        if name == "lucca.webhook_secret" and text == REDACTED:
            value = kept["lucca"]["webhook_secret"]
        elif name == "custom_fields":
            pairs = [line.partition("=") for line in text.splitlines() if line.strip()]
            value = {k.strip(): v.strip() for k, _, v in pairs}
        elif not text and name in OPTIONAL_FIELDS:
            continue  # left out: the default, or no webhook secret
        elif name in NUMBER_FIELDS:
            value = _number(name, text)
        *sections, leaf = name.split(".")
        node = document
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = value
    return document


def _number(name: str, text: str) -> float | int:
    try:
        return float(text) if NUMBER_FIELDS[name] is float else int(text)
    except ValueError:
        raise InvalidDocument(f"$.{name} must be a number") from None


async def save_settings(
    res: Resources, tenant: str, principal: Principal, values: Mapping[str, str]
) -> SettingsForm:
    """Validate and store the form; what the principal may not change is kept as stored."""
    existing = await replaceable_config(res, tenant)
    stored = _flatten(tenant_view(existing)) if existing is not None else {}
    allowed = dict(values)
    if not principal.allows(Action.CONFIGURE_SECRETS, tenant):
        allowed |= {name: stored.get(name, "") for name in SECRET_FIELDS}
    form = {name: allowed.get(name, "") for name in stored}
    try:
        kept = tenant_view(existing) if existing is not None else {}
        update = parse_tenant_update(
            tenant,
            orjson.dumps(_document(form, kept)),
            existing=existing,
            allow_http_elevo=res.settings.allow_http_elevo,
            egress=res.settings.egress_policy(),
        )
        await configure_tenant(res, update, by=principal)
    except (InvalidDocument, Forbidden) as exc:
        message = str(exc)
        return SettingsForm(_masked(form), {_field_of(message, stored): message})
    config = update.config
    log.info("tenant %s settings saved by %s", tenant, principal.name)
    return SettingsForm(_flatten(tenant_view(config)), saved=True)


def _field_of(message: str, fields: Mapping[str, object]) -> str:
    """The form field an error names, or "" (the form as a whole)."""
    for pattern in _PATHS:
        for found in pattern.finditer(message):
            if found.group(1) in fields:
                return found.group(1)
    return ""


def _masked(values: Mapping[str, str]) -> dict[str, str]:
    """Never send a secret typed in back to the browser: a refused form shows `***`."""
    return {k: REDACTED if k in SECRETS else v for k, v in values.items()}


@dataclass(frozen=True, slots=True)
class ConnectionTest:
    ok: bool
    message: str


async def test_connection(res: Resources, tenant: str, system: str) -> ConnectionTest:
    """One Lucca request (taken from the tenant's budget) or one SCIM read, with the stored
    configuration."""
    config = await replaceable_config(res, tenant)
    if config is None:
        return ConnectionTest(False, "The configuration cannot be read: save it again.")
    try:
        tenant_ctx = build_context(config, res.settings, res.http, res.clock)
        if system == "lucca":
            wait = await res.budget.take(
                tenant_ctx.lucca.base_url,
                config.lucca_requests_per_minute,
                priority=Priority.LIVE,  # an operator waits for it, as for a live sync
                tenant=tenant,
            )
            if wait > 0:
                return ConnectionTest(False, f"Lucca's budget is spent: try in {wait:.0f} s.")
            batch = await tenant_ctx.lucca.list_page(0, 1)
            return ConnectionTest(
                True, f"Lucca answered: the key reads employees ({len(batch.users)} read)."
            )
        page = await tenant_ctx.elevo.list_page(start_index=1, count=1)
        return ConnectionTest(
            True, f"Elevo answered: the token reads profiles ({page.total} in all)."
        )
    except LuccaAuthError:
        return ConnectionTest(False, "Lucca refused the API key.")
    except ElevoAuthError:
        return ConnectionTest(False, "Elevo refused the token.")
    except (UpstreamError, SyncError, ValueError) as exc:
        return ConnectionTest(False, f"No answer we can use: {exc}")

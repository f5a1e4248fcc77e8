"""What a `PUT /tenants/{tenant}` changes, and the rule that a secret follows its destination
(issue 12). Pure, no I/O; paths are the body's, without the leading `$.`.

A stored secret is sent to the place some settings name: the Lucca API key to
`https://{lucca.subdomain}.{lucca.domain}`, the Elevo token to `elevo.scim_url`. A PUT that moves
a destination and keeps the stored secret (omitted or "***") would send that secret wherever the
new destination points, to whoever changed it. So such a PUT must carry the secret again: 400,
naming the secret. `SECRET_DESTINATIONS` is the one table; a secret added later (an OAuth client
secret, an alert URL's signing secret) joins it with one line.

The webhook secrets are in no row: they are never sent anywhere, they check the signatures Lucca
puts on what it sends us. A new subdomain sends them nowhere, so it does not ask for them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from app.clients.egress import EgressPolicy
from app.core.tenant import TenantConfig
from app.schemas.common import loads
from app.schemas.errors import InvalidDocument
from app.schemas.tenant import parse_tenant, tenant_view
from app.secret import REDACTED

# Secret -> the settings that say where it is sent.
SECRET_DESTINATIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "lucca.api_key": ("lucca.subdomain", "lucca.domain"),
    "elevo.token": ("elevo.scim_url",),
    "alerts_secret": ("alerts_url",),
    # The token it obtains reads and registers the webhooks of that Lucca.
    "lucca.oauth.client_secret": ("lucca.subdomain", "lucca.domain"),
}
# Every secret of the document (a GET shows each as "***").
SECRETS: Final[tuple[str, ...]] = (
    "lucca.api_key",
    "lucca.webhook_secret",
    "lucca.oauth.client_secret",
    "elevo.token",
    "alerts_secret",
)
DESTINATIONS: Final[frozenset[str]] = frozenset(
    path for paths in SECRET_DESTINATIONS.values() for path in paths
)


@dataclass(frozen=True, slots=True)
class TenantUpdate:
    """A PUT body validated against the stored config: the config to store, and the paths of
    the settings it changes (a secret sent in clear counts as changed, even if equal: telling
    otherwise would let a caller guess the stored value)."""

    config: TenantConfig
    changed: tuple[str, ...]

    @property
    def guarded(self) -> tuple[str, ...]:
        """The changed settings only the admin may change: secrets and destinations."""
        return tuple(path for path in self.changed if _is_guarded(path))


def parse_tenant_update(
    tenant: str,
    body: bytes,
    *,
    existing: TenantConfig | None,
    allow_http_elevo: bool,
    egress: EgressPolicy | None,
) -> TenantUpdate:
    """Validate a PUT body into the update; `InvalidDocument` also for a destination moved
    without its secret."""
    document = loads(body)
    config = parse_tenant(
        tenant, document, existing=existing, allow_http_elevo=allow_http_elevo, egress=egress
    )
    sent = {path for path in SECRETS if _sent_in_clear(_at(document, path))}
    new_view = tenant_view(config)
    if existing is None:
        return TenantUpdate(config, tuple(sorted(_flatten(new_view))))
    old_view = tenant_view(existing)
    changed = _differences(old_view, new_view) | sent
    for secret, destinations in SECRET_DESTINATIONS.items():
        moved = [path for path in destinations if path in changed]
        if moved and secret not in sent and _at(old_view, secret) is not None:
            raise InvalidDocument(
                f"$.{secret} is required when `{moved[0]}` changes: the stored secret is never"
                " sent to a new destination"
            )
    return TenantUpdate(config, tuple(sorted(changed)))


def _is_guarded(path: str) -> bool:
    return path in DESTINATIONS or path in SECRETS


def _sent_in_clear(value: object) -> bool:
    if isinstance(value, str):
        return value != REDACTED
    return isinstance(value, list) and any(item != REDACTED for item in value)


def _at(document: object, path: str) -> object:
    for part in path.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(part)
    return document


def _flatten(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every leaf of the document by its dotted path (a custom field is one leaf each)."""
    leaves: dict[str, Any] = {}
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            leaves.update(_flatten(value, f"{path}."))
        else:
            leaves[path] = value
    return leaves


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
    old_leaves, new_leaves = _flatten(old), _flatten(new)
    return {
        path
        for path in old_leaves.keys() | new_leaves.keys()
        if old_leaves.get(path) != new_leaves.get(path)
    }

"""What the service knows of a tenant's webhook endpoint in Lucca (issue 15), one JSON document
per tenant at `t:{tenant}:lucca-endpoint`, and the claim of each watch interval.

No secret is kept here: the endpoint's signing secret is one of the tenant's webhook secrets,
encrypted with its config (app/store/tenants.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from arq.connections import ArqRedis

from app.store import keys


@dataclass(slots=True)
class OldEndpoint:
    """An endpoint Lucca suspended, replaced by a new one: the customer deletes it in Lucca."""

    id: str
    suspended_at: str
    missing_since: str  # the last event the service received before it failed
    delete_at: str  # the page of the customer's Lucca where endpoints are deleted


@dataclass(slots=True)
class EndpointState:
    endpoint_id: str | None = None
    status: str | None = None  # Lucca's: active | suspended | inactive; "deleted"
    registered_at: str | None = None
    checked_at: str | None = None
    refused_topics: list[str] = field(default_factory=list)
    error: str | None = None  # the last registration or watch that failed, why
    missing_since: str | None = None  # events not received since then, until replayed
    old_endpoints: list[OldEndpoint] = field(default_factory=list)
    replayed: str | None = None  # "replayed N events ..." of the last replay
    replayed_at: str | None = None

    def document(self) -> dict[str, Any]:
        return asdict(self)


async def load(redis: ArqRedis, tenant: str) -> EndpointState | None:
    raw = await redis.get(keys.lucca_endpoint(tenant))
    if raw is None:
        return None
    document = orjson.loads(raw)
    old = [OldEndpoint(**item) for item in document.pop("old_endpoints", [])]
    return EndpointState(**document, old_endpoints=old)


async def save(redis: ArqRedis, tenant: str, state: EndpointState) -> None:
    await redis.set(keys.lucca_endpoint(tenant), orjson.dumps(state.document()))


async def claim_watch(redis: ArqRedis, tenant: str, interval_seconds: float) -> bool:
    """True for the first worker to ask within this watch interval."""
    milliseconds = max(1000, int(interval_seconds * 1000))
    return bool(await redis.set(keys.lucca_watch_slot(tenant), b"1", nx=True, px=milliseconds))

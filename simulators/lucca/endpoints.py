"""Lucca's webhook machinery, simulated: OAuth clients and tokens, webhook endpoints, and the
deliveries of each company's events to them (API 2024-11-01; served by `lucca_api.py`).

Lucca's behaviour, as shared/reference/lucca-api.md says it: an endpoint is created with a
secret shown once; it gets the events emitted after its creation whose topic it lists; each
delivery is retried (`max_attempts` in all, `retry_delay` apart); a 404 or 410 answer suspends
the endpoint at once, and so do `suspend_after` failed attempts in a row. A suspended endpoint
gets nothing more, its pending deliveries stay `undelivered` (events are kept). Deliveries run
when `deliver` is called, with the caller's HTTP client and clock: a test drives Lucca's time.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import httpx
import orjson

from simulators.lucca.webhooks import Event, lucca_timestamp, sign

if TYPE_CHECKING:
    from simulators.lucca.company import Company

TOKEN_LIFETIME: Final = 1800
# The topics Lucca's document lists (`oneof-topics`); "department.updated" is not among them.
KNOWN_TOPICS: Final = frozenset(
    {"confirmation", "ping"}
    | {
        f"{kind}.{change}"
        for kind in ("employee", "employment", "job-position", "employee-extension", "leave")
        for change in ("created", "updated", "deleted")
    }
)


@dataclass(slots=True)
class SimEndpoint:
    id: str
    name: str
    webhook_url: str
    topics: list[str]
    api_version: str
    secret: str
    created_at: datetime
    first_event: int  # the number (from 0, ever emitted) of the first event it gets
    status: str = "inactive"
    failures_in_a_row: int = 0


@dataclass(slots=True)
class SimDelivery:
    id: str
    event: Event
    endpoint_id: str
    next_attempt_at: datetime
    status: str = "undelivered"
    attempts: list[tuple[datetime, int | None]] = field(default_factory=list)


class CompanyHooks:
    """One company's endpoints and deliveries."""

    def __init__(self, hub: WebhookHub) -> None:
        self._hub = hub
        self.endpoints: dict[str, SimEndpoint] = {}
        self.deliveries: list[SimDelivery] = []
        self._fanned_out = 0

    def create(
        self, company: Company, name: str, url: str, topics: list[str], api_version: str
    ) -> SimEndpoint:
        self.fan_out(company)
        endpoint = SimEndpoint(
            id=str(next(self._hub.ids)),
            name=name,
            webhook_url=url,
            topics=topics,
            api_version=api_version,
            secret=secrets.token_urlsafe(48),
            created_at=company.clock(),
            first_event=company.emitted_dropped + len(company.emitted),
        )
        self.endpoints[endpoint.id] = endpoint
        return endpoint

    def fan_out(self, company: Company) -> None:
        """A delivery per new event and endpoint that lists its topic (inactive ones keep none)."""
        dropped = company.emitted_dropped
        for index in range(max(self._fanned_out, dropped), dropped + len(company.emitted)):
            event = company.emitted[index - dropped]
            for endpoint in self.endpoints.values():
                wanted = event["topic"] in endpoint.topics and index >= endpoint.first_event
                if wanted and endpoint.status != "inactive":
                    self.deliveries.append(
                        SimDelivery(
                            id=str(next(self._hub.ids)),
                            event=event,
                            endpoint_id=endpoint.id,
                            # Due from the moment the event occurred.
                            next_attempt_at=datetime.fromisoformat(event["occurredAt"]),
                        )
                    )
        self._fanned_out = dropped + len(company.emitted)

    def event_status(self, event_id: str) -> str:
        """`delivered` when one delivery was, `failed` when all failed, else `scheduled`."""
        statuses = {d.status for d in self.deliveries if d.event["id"] == event_id}
        if "delivered" in statuses:
            return "delivered"
        if statuses == {"failed"}:
            return "failed"
        return "scheduled"

    async def deliver(self, http: httpx.AsyncClient, company: Company, now: datetime) -> int:
        """One round: every due delivery to an active endpoint is attempted once; how many."""
        self.fan_out(company)
        attempted = 0
        for delivery in self.deliveries:
            endpoint = self.endpoints[delivery.endpoint_id]
            due = delivery.status == "undelivered" and delivery.next_attempt_at <= now
            if not due or endpoint.status != "active":
                continue
            status = await _post(http, endpoint, delivery.event, now)
            attempted += 1
            self._record(endpoint, delivery, status, now)
        return attempted

    def _record(
        self, endpoint: SimEndpoint, delivery: SimDelivery, status: int | None, now: datetime
    ) -> None:
        delivery.attempts.append((now, status))
        if status is not None and 200 <= status < 300:
            delivery.status = "delivered"
            endpoint.failures_in_a_row = 0
            return
        endpoint.failures_in_a_row += 1
        if status in (404, 410) or endpoint.failures_in_a_row >= self._hub.suspend_after:
            endpoint.status = "suspended"
        if len(delivery.attempts) >= self._hub.max_attempts:
            delivery.status = "failed"
        delivery.next_attempt_at = now + self._hub.retry_delay


class WebhookHub:
    """The registry's OAuth clients, tokens and every company's hooks."""

    def __init__(
        self,
        *,
        suspend_after: int = 5,
        max_attempts: int = 5,
        retry_delay: timedelta = timedelta(minutes=1),
    ) -> None:
        self.suspend_after = suspend_after
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.ids = itertools.count(1001)
        self._clients: dict[str, tuple[str, str]] = {}
        self._tokens: dict[str, tuple[str, datetime]] = {}
        self._hooks: dict[int, CompanyHooks] = {}
        self.token_requests = 0
        # How a new endpoint's activation GET is sent: None for real HTTP (lucca_api.activate).
        self.activator: Callable[[str], Awaitable[bool]] | None = None

    def add_client(self, subdomain: str, client_id: str, client_secret: str) -> None:
        """An integration key of `subdomain`'s Lucca."""
        self._clients[client_id] = (client_secret, subdomain)

    def issue_token(self, client_id: str, client_secret: str, now: datetime) -> str | None:
        self.token_requests += 1
        known = self._clients.get(client_id)
        if known is None or not secrets.compare_digest(known[0], client_secret):
            return None
        token = secrets.token_urlsafe(32)
        self._tokens[token] = (known[1], now + timedelta(seconds=TOKEN_LIFETIME))
        return token

    def token_subdomain(self, token: str, now: datetime) -> str | None:
        known = self._tokens.get(token)
        if known is None or known[1] <= now:
            return None
        return known[0]

    def revoke_tokens(self) -> None:
        self._tokens.clear()

    def hooks(self, company: Company) -> CompanyHooks:
        # By identity: a company replaced under the same subdomain starts with no endpoint.
        return self._hooks.setdefault(id(company), CompanyHooks(self))


async def _post(
    http: httpx.AsyncClient, endpoint: SimEndpoint, event: Event, now: datetime
) -> int | None:
    body = orjson.dumps(event)
    timestamp = lucca_timestamp(now)
    headers = {
        "Content-Type": "application/json",
        "Lucca-Timestamp": timestamp,
        "Lucca-Signature": sign(endpoint.secret, timestamp, body),
    }
    try:
        response = await http.post(endpoint.webhook_url, content=body, headers=headers)
    except httpx.HTTPError:
        return None
    return response.status_code


def endpoint_document(endpoint: SimEndpoint, source: str) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "type": "webhook-endpoint",
        "url": f"{source}/lucca-api/webhook-endpoints/{endpoint.id}",
        "name": endpoint.name,
        "apiVersion": endpoint.api_version,
        "webhookUrl": endpoint.webhook_url,
        "topics": list(endpoint.topics),
        "businessEstablishments": None,
        "status": endpoint.status,
    }


def delivery_document(delivery: SimDelivery, source: str) -> dict[str, Any]:
    base = f"{source}/lucca-api"
    return {
        "id": delivery.id,
        "type": "webhook-delivery",
        "url": f"{base}/webhook-deliveries/{delivery.id}",
        "nextAttemptAt": delivery.next_attempt_at.isoformat().replace("+00:00", "Z"),
        "attemptsCount": len(delivery.attempts),
        "status": delivery.status,
        "event": {
            "id": delivery.event["id"],
            "type": delivery.event["topic"],
            "url": f"{base}/events/{delivery.event['id']}",
        },
        "webhookEndpoint": {
            "id": delivery.endpoint_id,
            "type": "webhook-endpoint",
            "url": f"{base}/webhook-endpoints/{delivery.endpoint_id}",
        },
    }

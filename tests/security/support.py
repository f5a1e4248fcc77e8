"""What the security tests share: two tenants' credentials, signing, and the app in-process."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.clients.egress import Resolver
from app.main import create_app
from app.service.resources import Resources
from app.settings import Settings
from tests.asgi import asgi_client
from tests.clients.egress_fakes import FakeResolver
from tests.conftest import TEST_ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_TOKEN}"}

# Distinctive values: any of them found in an answer, a log line or Redis is a leak.
ACME_API_KEY = "acme-lucca-key-5f1e0c9a7b"
ACME_WEBHOOK = "acme-whsec-current-3d8b1f"
ACME_WEBHOOK_OLD = "acme-whsec-previous-9c2e4a"
ACME_ELEVO_TOKEN = "acme-elevo-token-7a6d2c"
ACME_ALERTS_SECRET = "acme-alerts-secret-4b9e1f"
BETA_API_KEY = "beta-lucca-key-0b4f8e2d1c"
BETA_WEBHOOK = "beta-whsec-current-6e1a9f"
BETA_ELEVO_TOKEN = "beta-elevo-token-2f9c5b"
TENANT_SECRETS = (
    ACME_API_KEY,
    ACME_WEBHOOK,
    ACME_WEBHOOK_OLD,
    ACME_ELEVO_TOKEN,
    ACME_ALERTS_SECRET,
    BETA_API_KEY,
    BETA_WEBHOOK,
    BETA_ELEVO_TOKEN,
)


def tenant_body(
    subdomain: str,
    api_key: str,
    webhook: str | list[str],
    elevo_token: str,
    *,
    scim_url: str | None = None,
) -> dict[str, Any]:
    return {
        "lucca": {
            "subdomain": subdomain,
            "domain": "ilucca.net",
            "api_key": api_key,
            "webhook_secret": webhook,
        },
        "elevo": {
            "scim_url": scim_url or f"https://elevo.example/{subdomain}/scim/v2",
            "token": elevo_token,
        },
    }


ACME_BODY = tenant_body(
    "acme", ACME_API_KEY, [ACME_WEBHOOK, ACME_WEBHOOK_OLD], ACME_ELEVO_TOKEN
) | {
    "alerts_url": "https://alerts.example/acme/hook",
    "alerts_secret": ACME_ALERTS_SECRET,
}
BETA_BODY = tenant_body("beta", BETA_API_KEY, BETA_WEBHOOK, BETA_ELEVO_TOKEN)


def lucca_timestamp(offset_seconds: float = 0.0) -> str:
    """An ISO 8601 `Lucca-Timestamp`, `offset_seconds` from now."""
    moment = datetime.now(UTC) + timedelta(seconds=offset_seconds)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Lucca's signature, written here from the contract rather than imported from the app."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_headers(
    secret: str,
    body: bytes,
    *,
    offset_seconds: float = 0.0,
    content_type: str = "application/json",
) -> dict[str, str]:
    timestamp = lucca_timestamp(offset_seconds)
    return {
        "Content-Type": content_type,
        "Lucca-Timestamp": timestamp,
        "Lucca-Signature": sign(secret, timestamp, body),
    }


def leaked(text: str | bytes, secrets: Iterable[str] = TENANT_SECRETS) -> list[str]:
    """The secrets found in `text`."""
    haystack = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
    return [s for s in secrets if s.encode() in haystack]


@dataclass
class Served:
    """The whole web app in-process, over an ASGI transport, with real Resources (Redis)."""

    client: httpx.AsyncClient
    resources: Resources

    async def put_tenant(self, name: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.put(f"/tenants/{name}", json=body, headers=ADMIN)

    async def redis_keys(self) -> set[bytes]:
        return {key async for key in self.resources.redis.scan_iter(count=1000)}


@asynccontextmanager
async def serve(
    settings: Settings, *, raise_app_exceptions: bool = True, resolver: Resolver | None = None
) -> AsyncIterator[Served]:
    """The app; with `raise_app_exceptions=False` an unhandled error is the 500 a server sends.
    `resolver` answers its DNS lookups (none resolves by default: there is no DNS here)."""
    resources = await Resources.create(settings, resolver=resolver or FakeResolver({}))
    app = create_app(settings, resources=resources)
    try:
        async with asgi_client(app, raise_app_exceptions=raise_app_exceptions) as client:
            yield Served(client, resources)
    finally:
        await resources.aclose()

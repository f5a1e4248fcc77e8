"""Lucca's webhook API end to end (issue 15): a tenant onboarded with only its OAuth client gets
its endpoint registered and its secret stored; a 503 outage gets the endpoint suspended, the
service notices, repairs and replays; wrong OAuth credentials give a clear status; the client
secret shows nowhere.

Lucca is the simulator (its deliveries driven by the test, in simulated minutes), the service
sits behind the fault proxy (its 503s), Elevo is scim2-server.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.clients.elevo import ElevoClient
from app.core.scim import FAMILY_NAME
from app.secret import Secret
from app.service.lucca_webhook import watch_endpoints
from app.service.runs import recent_run_documents, status_document
from simulators.faultproxy import FaultProxy
from simulators.lucca.company import Company, Registry
from simulators.lucca.endpoints import CompanyHooks
from stack.inprocess import ThreadedServer
from tests.e2e.conftest import FakeClock, ServiceFactory
from tests.e2e.harness import SCIM_TOKEN, Service, eventually, settle
from tests.e2e.stories import small_company
from tests.security.test_no_leaks import every_logger_at_debug, log_texts, redis_contents

pytestmark = pytest.mark.e2e


@pytest.fixture
def front() -> AsyncIterator[tuple[FaultProxy, ThreadedServer]]:
    """The service's public address: a proxy that answers 503 while the test says so."""
    proxy = FaultProxy("http://127.0.0.1:9")  # the service's address is set once it runs
    server = ThreadedServer(proxy.app())
    yield proxy, server
    server.stop()


@pytest.fixture
async def service(
    service_factory: ServiceFactory,
    front: tuple[FaultProxy, ThreadedServer],
    lucca_server: ThreadedServer,
) -> Service:
    proxy, server = front
    running = await service_factory(
        PUBLIC_URL=server.url,
        LUCCA_TOKEN_URL=f"{lucca_server.url}/connect/token",
        WEBHOOK_WATCH_SECONDS="1",
    )
    proxy.upstream = httpx.URL(running.url)
    return running


@dataclass
class Onboarded:
    service: Service
    name: str
    company: Company
    client_secret: str

    @property
    def hooks(self) -> CompanyHooks:
        return self.service.registry.hub.hooks(self.company)

    async def webhook_status(self) -> dict[str, Any] | None:
        status = await status_document(self.service.resources, self.name)
        webhook: dict[str, Any] | None = status["lucca_webhook"]
        return webhook

    async def deliver(self, clock: FakeClock) -> int:
        return await self.hooks.deliver(self.service.http, self.company, clock())

    async def family_name(self, user_id: int) -> str | None:
        elevo = ElevoClient(
            self.service.http, f"{self.service.scim_base}/{self.name}/v2", Secret(SCIM_TOKEN)
        )
        profile = await elevo.find_by_external_id(str(user_id))
        return None if profile is None else profile.attributes.get(FAMILY_NAME)


async def onboard(service: Service, *, wrong_secret: bool = False) -> Onboarded:
    """PUT a tenant with its API key, Elevo, and an OAuth client: no webhook secret."""
    registry: Registry = service.registry
    company = registry.add(small_company(rate_limit=None))
    name, client_secret = f"t{secrets.token_hex(4)}", f"oauth-{secrets.token_hex(12)}"
    registry.hub.add_client(company.subdomain, f"client-{name}", client_secret)
    sent = f"wrong-{secrets.token_hex(12)}" if wrong_secret else client_secret
    body = {
        "lucca": {
            "subdomain": company.subdomain,
            "api_key": company.api_key,
            "oauth": {"client_id": f"client-{name}", "client_secret": sent},
        },
        "elevo": {"scim_url": f"{service.scim_base}/{name}/v2", "token": SCIM_TOKEN},
    }
    answer = await service.http.put(
        f"{service.url}/tenants/{name}", json=body, headers=service.admin_headers
    )
    assert answer.status_code == 201, answer.text
    return Onboarded(service, name, company, sent)


async def registered(tenant: Onboarded) -> dict[str, Any]:
    async def active() -> dict[str, Any] | None:
        webhook = await tenant.webhook_status()
        return webhook if webhook and webhook["status"] == "active" else None

    return await eventually(active, timeout=30)


async def test_onboarding_with_only_oauth_registers_and_accepts_the_first_webhook(
    service: Service, clock: FakeClock
) -> None:
    tenant = await onboard(service)
    webhook = await registered(tenant)
    endpoint = tenant.hooks.endpoints[webhook["endpoint_id"]]
    assert endpoint.webhook_url == f"{service.settings.public_url}/webhooks/lucca/{tenant.name}"
    # Lucca's document lists no department topic: refused, reported, the rest registered.
    assert webhook["refused_topics"] == ["department.updated"]
    assert "employee.updated" in endpoint.topics
    config = await service.resources.tenants.get(tenant.name)
    assert config is not None
    assert config.webhook_secrets == (Secret(endpoint.secret),)

    tenant.company.update(2, lastName="Registered")
    assert await tenant.deliver(clock) == 1
    [delivery] = tenant.hooks.deliveries
    assert delivery.status == "delivered"
    assert delivery.attempts[-1][1] == 202

    async def synced() -> bool:
        return await tenant.family_name(2) == "Registered"

    await eventually(synced, timeout=30)


async def test_an_outage_suspends_the_endpoint_and_the_service_repairs_and_replays(
    service: Service, front: tuple[FaultProxy, ThreadedServer], clock: FakeClock
) -> None:
    proxy, _ = front
    tenant = await onboard(service)
    first = await registered(tenant)
    started = await service.http.post(
        f"{service.url}/sync/{tenant.name}", json={"mode": "full"}, headers=service.admin_headers
    )
    assert started.status_code == 202
    await settle(service)
    tenant.company.update(1, lastName="Before")
    assert await tenant.deliver(clock) == 1  # accepted: the checkpoint

    proxy.set_faults({"error_rate": 1.0})  # the service answers 503 for ten minutes
    changes = {2: "During", 3: "Outage", 4: "Missed"}
    for user_id, family in changes.items():
        tenant.company.update(user_id, lastName=family)
    for minute in range(10):
        clock.offset_seconds = minute * 60.0
        await tenant.deliver(clock)
    assert tenant.hooks.endpoints[first["endpoint_id"]].status == "suspended"
    proxy.clear_faults()

    async def watch_queued() -> bool | None:
        # The tick's watch notices. The worker's own minute tick may have claimed this second's
        # watch (the interval is 1 s here): then the next second's call queues it.
        return await watch_endpoints(service.resources) == 1 or None

    assert await eventually(watch_queued, timeout=10)

    async def repaired() -> dict[str, Any] | None:
        webhook = await tenant.webhook_status()
        return webhook if webhook and webhook["replayed"] else None

    webhook = await eventually(repaired, timeout=60)
    assert webhook["status"] == "active"
    assert webhook["endpoint_id"] != first["endpoint_id"]
    [old] = webhook["old_endpoints"]
    assert old["id"] == first["endpoint_id"]
    assert old["delete_at"].endswith("/integrations/endpoints")
    assert old["missing_since"]
    assert webhook["replayed"].startswith("replayed ")
    # Both secrets accepted during the switch, the new one first.
    config = await service.resources.tenants.get(tenant.name)
    assert config is not None
    new_secret = tenant.hooks.endpoints[webhook["endpoint_id"]].secret
    assert config.webhook_secrets[0] == Secret(new_secret)
    assert len(config.webhook_secrets) == 2

    async def landed() -> bool:
        names = {u: await tenant.family_name(u) for u in changes}
        return names == changes

    await eventually(landed, timeout=60)
    runs = await recent_run_documents(service.resources, tenant.name, limit=50)
    assert [r["mode"] for r in runs].count("full") == 1  # only the initial one
    assert "lucca-replay" in {r["trigger"] for r in runs}

    # The new endpoint delivers, the old one stays quiet.
    tenant.company.update(2, lastName="After")
    await tenant.deliver(clock)
    assert tenant.hooks.deliveries[-1].status == "delivered"


async def test_wrong_oauth_credentials_give_a_clear_status(service: Service) -> None:
    tenant = await onboard(service, wrong_secret=True)

    async def refused() -> dict[str, Any] | None:
        webhook = await tenant.webhook_status()
        return webhook if webhook and webhook["error"] else None

    webhook = await eventually(refused, timeout=30)
    assert "Lucca refused the OAuth client" in webhook["error"]
    assert webhook["endpoint_id"] is None
    answer = await service.http.post(
        f"{service.url}/tenants/{tenant.name}/webhook", headers=service.admin_headers
    )
    assert answer.status_code == 200
    assert "refused the OAuth client" in answer.json()["webhook"]["error"]
    # The rest of the tenant works as before.
    started = await service.http.post(
        f"{service.url}/sync/{tenant.name}", json={"mode": "full"}, headers=service.admin_headers
    )
    assert started.status_code == 202


async def test_the_client_secret_is_in_no_log_redis_value_or_answer(
    service: Service, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    answers: list[bytes] = []
    with every_logger_at_debug(caplog):
        tenant = await onboard(service)
        await registered(tenant)
        for path in (f"/tenants/{tenant.name}", f"/sync/{tenant.name}"):
            got = await service.http.get(f"{service.url}{path}", headers=service.admin_headers)
            assert got.status_code == 200, got.text
            answers.append(got.content)
        again = await service.http.post(
            f"{service.url}/tenants/{tenant.name}/webhook", headers=service.admin_headers
        )
        assert again.status_code == 200, again.text
        assert again.json()["webhook"]["status"] == "active"
        answers.append(again.content)
        wrong = await onboard(service, wrong_secret=True)
        await eventually(wrong.webhook_status, timeout=30)
        await settle(service)
    watched = [tenant.client_secret, wrong.client_secret]
    for where, text in log_texts(caplog.records):
        assert not [s for s in watched if s in text], where
    for key, piece in await redis_contents(service.resources.redis):
        assert not [s for s in watched if s.encode() in piece], key
    for answer in answers:
        assert not [s for s in watched if s.encode() in answer]
    assert b'"client_secret":"***"' in answers[0]

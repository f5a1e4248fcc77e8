"""Under Lucca's real budget, bursts, a revoked key, and a Redis that stops answering."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Iterator
from functools import partial

import pytest
from prometheus_client import REGISTRY

from app.core import scim
from app.service.runs import recent_run_documents, run_document
from simulators.lucca.company import Registry
from simulators.lucca.generator import generate_company
from stack.ports import free_port, wait_for_port
from tests.conftest import make_settings
from tests.e2e.conftest import FakeClock, ServiceFactory
from tests.e2e.harness import ScimServer, Service, Tenant, eventually, start_service
from tests.e2e.stories import small_company

pytestmark = pytest.mark.e2e


def elevo_writes(tenant: str) -> float:
    return sum(
        REGISTRY.get_sample_value(
            "sync_elevo_requests_total",
            {"tenant": tenant, "operation": op, "status": status},
        )
        or 0.0
        for op in ("create", "patch")
        for status in ("200", "201", "204")
    )


@pytest.mark.no_cover  # a wall-clock budget: coverage's tracing (scripts/test) would eat it
async def test_a_burst_of_1000_changes_costs_at_most_25_lucca_requests(
    service_factory: ServiceFactory,
) -> None:
    # The real budget: 40 requests per minute, shared by every process.
    service = await service_factory(LUCCA_BUDGET_OVERRIDE="0", USER_COOLDOWN_SECONDS="2")
    company = service.registry.add(generate_company("burst", 1000, seed=3, rate_limit=50))
    tenant = await service.add_tenant(company, per_minute=40)
    company.limiter.limit = None  # the setup's full run is not what is measured
    await tenant.full_sync()
    await tenant.settle()
    company.limiter.limit = 50
    company.requests.reset()

    events = []
    for user in company.users():
        events += company.update(user["id"], lastName=f"{user['lastName']}-B")
    started = time.monotonic()
    await asyncio.gather(*(tenant.sender.send(e) for e in events[:500]))
    await asyncio.gather(*(tenant.sender.send(e) for e in events[500:]))
    await tenant.settle(within=120)
    elapsed = time.monotonic() - started

    report = await tenant.consistency()
    assert report.mismatches == []
    assert company.requests.total <= 25, company.requests.by_kind
    assert company.requests.by_status.get(429, 0) == 0  # the sync stayed inside the budget
    assert elapsed < 60


@pytest.mark.no_cover  # a wall-clock budget: coverage's tracing (scripts/test) would eat it
async def test_100_notices_for_one_user_in_a_second_cost_2_reads_and_2_writes(
    service_factory: ServiceFactory,
) -> None:
    service = await service_factory(USER_COOLDOWN_SECONDS="2")
    company = service.registry.add(small_company(rate_limit=None))
    tenant = await service.add_tenant(company)
    await tenant.full_sync()
    company.requests.reset()
    writes_before = elevo_writes(tenant.name)

    started = time.monotonic()
    for i in range(100):
        await tenant.send(company.set_job(3, job_title=f"Title {i}"))
    assert time.monotonic() - started < 1.5
    await tenant.settle()

    chloe = await tenant.profile(3)
    assert chloe is not None
    assert chloe.attributes[scim.TITLE] == "Title 99"
    assert company.requests.by_id <= 2
    assert elevo_writes(tenant.name) - writes_before <= 2


async def test_a_revoked_key_is_flagged_not_hammered(service: Service) -> None:
    company = service.registry.add(small_company(rate_limit=None))
    tenant = await service.add_tenant(company)
    await tenant.full_sync()
    company.faults.force(401, count=1000)
    company.requests.reset()
    await tenant.send(company.update(2, lastName="Revoked"))
    await tenant.settle()
    for i in range(5):
        await tenant.send(company.update(3, lastName=f"Again{i}"))
    await tenant.settle()
    assert company.requests.total == 1  # one refusal, then nobody calls Lucca with that key

    status = await tenant.status()
    # No employee's failure: both wait, with the reason, for a key that works (issue 10).
    assert status["failing_users"] == {}
    [waiting] = status["waiting"]["reasons"]
    assert (waiting["reason"], waiting["users"]) == ("lucca_key", 2)
    company.faults.clear()

    body = {
        "lucca": {"subdomain": company.subdomain, "api_key": company.api_key},
        "elevo": {"scim_url": tenant.config.elevo_scim_url, "token": "elevo-test-token"},
    }
    put = await service.http.put(
        f"{service.url}/tenants/{tenant.name}", json=body, headers=service.admin_headers
    )
    assert put.status_code == 200
    runs = await recent_run_documents(service.resources, tenant.name)
    catch_up = next(r for r in runs if r["trigger"] == "key-replaced")
    done = await tenant.wait_run(str(catch_up["id"]))
    assert done["state"] == "done"
    chloe = await tenant.profile(3)
    assert chloe is not None
    assert chloe.attributes[scim.FAMILY_NAME] == "Again4"


@pytest.fixture
def lone_redis() -> Iterator[int]:
    """A Redis of the test's own, which the test may stop."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],  # noqa: S607
        stdout=subprocess.DEVNULL,
    )
    wait_for_port(port)
    yield port
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


async def test_the_webhook_answers_503_when_redis_is_gone(
    lone_redis: int, scim_server: ScimServer, lucca_registry: Registry, clock: FakeClock
) -> None:
    settings = make_settings(REDIS_URL=f"redis://127.0.0.1:{lone_redis}/0")
    service = await start_service(settings, scim_server.base, lucca_registry, clock)
    try:
        company = service.registry.add(small_company(rate_limit=None))
        tenant = await service.add_tenant(company)
        ready = await service.http.get(f"{service.url}/readyz")
        assert ready.status_code == 200
        stop = await asyncio.create_subprocess_exec(
            "redis-cli", "-p", str(lone_redis), "shutdown", "nosave",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await stop.wait()
        statuses = await tenant.send(company.update(2, lastName="Lost?"))
        assert statuses == [503]  # Lucca will retry: nothing was acknowledged and dropped
        ready = await service.http.get(f"{service.url}/readyz")
        assert ready.status_code == 503
    finally:
        await service.stop()


async def test_a_big_reconciliation_does_not_hold_up_another_tenants_webhooks(
    service: Service,
) -> None:
    big = service.registry.add(generate_company("fair-a", 3000, seed=5, rate_limit=None))
    a = await service.add_tenant(big)
    company = service.registry.add(small_company(rate_limit=None))
    b = await service.add_tenant(company)
    await b.full_sync()

    response = await service.http.post(
        f"{service.url}/sync/{a.name}", json={"mode": "full"}, headers=service.admin_headers
    )
    run_id = response.json()["run"]
    await eventually(partial(_running, service, a.name, run_id))
    latencies = []
    for i in range(5):
        start = time.monotonic()
        await b.send(company.set_job(2, job_title=f"Fair {i}"))
        await eventually(partial(_title_is, b, 2, f"Fair {i}"), interval=0.02)
        latencies.append(time.monotonic() - start)
        await asyncio.sleep(0.35)  # past the user's cooldown: each change is a fresh sync
    run = await a.wait_run(run_id, within=120)
    assert run["state"] == "done"
    assert max(latencies) < 3.0, latencies


async def _running(service: Service, tenant: str, run_id: str) -> bool:
    run = await run_document(service.resources, tenant, run_id)
    return bool(run and run["state"] == "running")


async def _title_is(tenant: Tenant, user_id: int, title: str) -> bool:
    profile = await tenant.profile(user_id)
    return bool(profile and profile.attributes[scim.TITLE] == title)

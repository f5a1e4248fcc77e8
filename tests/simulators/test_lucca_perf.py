"""Sizes the benchmarks use: 100,000 users generated in seconds, pages rendered in milliseconds."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from simulators.lucca import Company, Registry, create_lucca_app, generate_company

pytestmark = pytest.mark.slow
FIELDS = (
    "id,firstName,lastName,mail,login,jobTitle,employeeNumber,dtContractStart,dtContractEnd,"
    "modifiedAt,manager[id],department[id,name],extendedData"
)


@pytest.fixture(scope="module")
def huge() -> Company:
    started = time.perf_counter()
    company = generate_company("megacorp", 100_000, seed=1, rate_limit=None)
    # "A few seconds": generous, so that a loaded CI machine does not flake.
    assert time.perf_counter() - started < 8.0
    return company


@pytest.fixture
async def huge_client(huge: Company) -> AsyncIterator[httpx.AsyncClient]:
    registry = Registry()
    registry.add(huge)
    transport = httpx.ASGITransport(create_lucca_app(registry))
    headers = {"Authorization": f"lucca application={huge.api_key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://lucca.test", headers=headers
    ) as client:
        yield client


async def timed_get(client: httpx.AsyncClient, params: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    response = await client.get("/megacorp/api/v3/users", params=params)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    return elapsed, len(response.content)


def test_generated_at_full_size(huge: Company):
    assert len(huge) == 100_000


async def test_a_thousand_user_page_renders_well_under_50_ms(huge_client: httpx.AsyncClient):
    await timed_get(huge_client, {"fields": FIELDS, "paging": "0,1000"})  # selects and caches
    timings = [
        (await timed_get(huge_client, {"fields": FIELDS, "paging": f"{n * 1000},1000"}))[0]
        for n in range(1, 6)
    ]
    assert min(timings) < 0.025
    assert sorted(timings)[2] < 0.05


async def test_id_filter_on_100k_is_a_lookup(huge: Company, huge_client: httpx.AsyncClient):
    ids = ",".join(str(u["id"]) for u in huge.users()[::1000])
    elapsed, size = await timed_get(
        huge_client, {"fields": FIELDS, "id": ids, "formerEmployees": "true"}
    )
    assert size > 100 * 200
    assert elapsed < 0.02

"""The sizes the benchmarks use: a company of 100,000 users is generated and served whole.

How fast it is generated and rendered is measured by the benchmarks that use it
(bench/reconcile_scale.py, bench/fleet.py), not asserted here: a wall-clock bound in a test
flakes on a busy machine and proves nothing about correctness.
"""

from __future__ import annotations

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
    return generate_company("megacorp", 100_000, seed=1, rate_limit=None)


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


async def get_users(client: httpx.AsyncClient, params: dict[str, str]) -> list[dict[str, object]]:
    response = await client.get("/megacorp/api/v3/users", params=params)
    assert response.status_code == 200
    items: list[dict[str, object]] = response.json()["data"]["items"]
    return items


def test_generated_at_full_size(huge: Company):
    assert len(huge) == 100_000


async def test_pages_of_a_thousand_cover_the_company_once_in_order(
    huge_client: httpx.AsyncClient,
):
    ids: list[int] = []
    for offset in range(0, 101_000, 1000):
        page = await get_users(
            huge_client,
            {"fields": FIELDS, "paging": f"{offset},1000", "formerEmployees": "true"},
        )
        ids.extend(int(str(user["id"])) for user in page)
    assert len(ids) == 100_000
    assert ids == sorted(set(ids))


async def test_id_filter_on_100k_returns_exactly_those_users(
    huge: Company, huge_client: httpx.AsyncClient
):
    wanted = [int(u["id"]) for u in huge.users()[::1000]]
    found = await get_users(
        huge_client,
        {"fields": FIELDS, "id": ",".join(map(str, wanted)), "formerEmployees": "true"},
    )
    assert sorted(int(str(user["id"])) for user in found) == sorted(wanted)

"""Fixtures for the Lucca simulator's tests: a hand-driven clock, companies and an app client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import httpx
import pytest

from simulators.lucca import Company, ManualClock, Registry, create_lucca_app, generate_company

# 09:00 UTC is 10:00 in Paris, on 2025-03-03 (a Monday).
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def acme(clock: ManualClock) -> Company:
    return generate_company("acme", 300, seed=7, clock=clock, api_key="acme-key")


@pytest.fixture
def tiny(clock: ManualClock) -> Company:
    """Three people, built by hand: a self-managed boss, a report, and one who left."""
    company = Company("tiny", "tiny-key", clock=clock)
    company.add_legal_entity("Tiny SAS", 1)
    company.add_department("R&D", 13)
    company.add_department("Finance", 14)
    company.hire(
        "Roger", "Smith", start=date(2015, 1, 5), department_id=13, user_id=383,
        manager_id=383, job_title="CEO", mail="roger.smith@tiny.example", login="rsmith",
    )  # fmt: skip
    company.hire(
        "John", "Doe", start=date(2021, 9, 1), department_id=13, user_id=416,
        manager_id=383, job_title="Developer", mail="john.doe@tiny.example", login="jdoe",
        employee_number="00057", extended={"e_cost_center": "CC-12"},
    )  # fmt: skip
    company.hire(
        "Ada", "Gone", start=date(2019, 2, 1), end=date(2025, 1, 31), department_id=14,
        user_id=417, manager_id=383, mail=None, login="agone",
    )  # fmt: skip
    return company


@pytest.fixture
def registry(clock: ManualClock, acme: Company, tiny: Company) -> Registry:
    registry = Registry(clock=clock)
    registry.add(acme)
    registry.add(tiny)
    return registry


@pytest.fixture
async def client(registry: Registry, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_lucca_app(registry, monotonic=clock.monotonic, sleep=clock.sleep)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://lucca.test") as client:
        yield client


@pytest.fixture
def acme_auth(acme: Company) -> dict[str, str]:
    return {"Authorization": f"lucca application={acme.api_key}"}


@pytest.fixture
def tiny_auth(tiny: Company) -> dict[str, str]:
    return {"Authorization": f"lucca application={tiny.api_key}"}

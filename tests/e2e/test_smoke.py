from __future__ import annotations

import pytest

from simulators.lucca.generator import generate_company
from tests.e2e.harness import Service

pytestmark = pytest.mark.e2e


async def test_full_sync_converges_a_generated_company(service: Service) -> None:
    company = service.registry.add(generate_company("smoke", 40, seed=1, rate_limit=None))
    tenant = await service.add_tenant(company)
    run = await tenant.full_sync()
    assert run["state"] == "done", run
    report = await tenant.consistency()
    assert report.mismatches == []
    assert report.checked == 40

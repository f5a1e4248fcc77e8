"""A full run never overwrites a fresher per-employee write (issue 10, point 6), end to end:
the real worker, the Lucca simulator, scim2-server. The run's page is held between its Lucca
read and its writes while a webhook changes an employee and that employee's job writes."""

from __future__ import annotations

import pytest

from app.core import scim
from app.service import reconcile
from tests.e2e.harness import Service, Tenant, eventually
from tests.e2e.stories import small_company

pytestmark = pytest.mark.e2e


async def family_name(tenant: Tenant, user_id: int) -> str | None:
    profile = await tenant.profile(user_id)
    return None if profile is None else str(profile.attributes[scim.FAMILY_NAME])


async def test_a_page_read_before_a_webhook_leaves_the_webhooks_value(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = await service.add_tenant(service.registry.add(small_company(rate_limit=None)))
    assert (await acme.full_sync())["state"] == "done"
    acme.company.update(2, lastName="Read-by-the-page")  # no webhook: only the run sees it
    real_sync_page = reconcile._sync_page

    async def held_page(*args: object, **kwargs: object) -> None:
        assert await acme.send(acme.company.update(2, lastName="Newer")) == [202]

        async def webhook_landed() -> bool:
            return await family_name(acme, 2) == "Newer"

        await eventually(webhook_landed, timeout=30)
        await real_sync_page(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reconcile, "_sync_page", held_page)
    run = await acme.full_sync()
    assert run["state"] == "done"
    assert await family_name(acme, 2) == "Newer"
    assert run["counts"].get("skipped") == 1
    history = (await service.resources.records.history(acme.name, "2"))[0]
    assert (history["action"], history["run"]) == ("skipped", run["id"])
    await acme.settle()
    assert (await acme.consistency()).ok

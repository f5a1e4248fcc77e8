"""The skip field when Lucca leaves it out (sync-rules.md, "Absent means unticked" and
"Permission loss"), end to end: Lucca simulator -> web app -> worker -> scim2-server."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from app.core import scim
from simulators.lucca.generator import generate_company
from tests.e2e.harness import Service, Tenant, eventually
from tests.e2e.stories import small_company

pytestmark = pytest.mark.e2e

SKIP = "e_skip_elevo_sync"


async def history_of(tenant: Tenant, user_id: int) -> list[dict[str, Any]]:
    return await tenant.service.resources.records.history(tenant.name, str(user_id))


async def family_name(tenant: Tenant, user_id: int) -> str | None:
    profile = await tenant.profile(user_id)
    value = None if profile is None else profile.attributes.get(scim.FAMILY_NAME)
    return None if value is None else str(value)


async def test_real_data_most_without_the_field_syncs_and_so_does_a_webhook(
    service: Service,
) -> None:
    company = service.registry.add(
        generate_company(f"real{secrets.token_hex(3)}", 60, seed=4, rate_limit=None)
    )
    users = company.users()
    without = [u for u in users if SKIP not in u["extendedData"]]
    assert len(without) > len(users) / 2  # most employees never had the checkbox set
    tenant = await service.add_tenant(company)
    run = await tenant.full_sync()
    assert run["state"] == "done"
    assert (await tenant.consistency()).mismatches == []
    status = await tenant.status()
    assert status["permission_loss"] is None
    assert status["skip_field_warning"] is None

    managed = {p.external_id for p in await tenant.profiles() if p.managed and p.active}
    user_id = next(u["id"] for u in without if str(u["id"]) in managed)
    assert set(await tenant.send(company.update(user_id, lastName="Sansfield"))) == {202}

    async def renamed() -> bool:
        return await family_name(tenant, user_id) == "Sansfield"

    assert await eventually(renamed)
    await tenant.settle()
    assert (await history_of(tenant, user_id))[0]["action"] == "update"
    assert (await tenant.status())["permission_loss"] is None


async def test_a_company_where_nobody_ever_had_the_field_syncs_fully_with_a_warning(
    service: Service,
) -> None:
    company = service.registry.add(
        generate_company(
            f"nobody{secrets.token_hex(3)}", 40, seed=2, rate_limit=None, skip_presence="nobody"
        )
    )
    assert not any(SKIP in u["extendedData"] for u in company.users())
    tenant = await service.add_tenant(company)
    run = await tenant.full_sync()
    assert run["state"] == "done"
    assert run["counts"]["create"] > 30
    assert (await tenant.consistency()).mismatches == []
    status = await tenant.status()
    assert status["permission_loss"] is None
    assert SKIP in status["skip_field_warning"]
    # Nothing is flagged afterwards either: a second listing is no loss.
    assert (await tenant.full_sync())["state"] == "done"
    assert (await tenant.status())["permission_loss"] is None


async def test_a_key_that_loses_the_section_holds_then_lifts_by_itself(service: Service) -> None:
    company = service.registry.add(small_company(rate_limit=None))
    company.set_extension(3, SKIP, True)  # Chloé is excluded
    tenant = await service.add_tenant(company)
    assert (await tenant.full_sync())["state"] == "done"
    assert await tenant.profile(3) is None

    company.hide_extension_section(SKIP)
    company.update(2, lastName="Held")  # a change the loss must not apply
    held = await tenant.full_sync()
    assert held["state"] == "held"
    assert "permission loss" in held["waiting"]
    assert held["counts"] == {"held": 1}  # Chloé, last seen excluded
    assert await family_name(tenant, 2) == "Martin"
    assert await tenant.profile(3) is None
    [chloe] = (await history_of(tenant, 3))[:1]
    assert (chloe["action"], chloe["run"]) == ("held", held["id"])
    assert "last seen excluded" in chloe["reason"]
    assert SKIP in (await tenant.status())["permission_loss"]

    # Meanwhile everyone else syncs normally, and the previously excluded stays held.
    await tenant.send(company.set_job(4, job_title="Sales lead"))
    await tenant.send(company.update(3, lastName="Durand-Roy"))
    await tenant.settle()
    dan = await tenant.profile(4)
    assert dan is not None
    assert dan.attributes[scim.TITLE] == "Sales lead"
    assert await tenant.profile(3) is None
    assert (await history_of(tenant, 3))[0]["action"] == "held"
    # A later listing that still sees nobody keeps the flag, and holds only Chloé.
    again = await tenant.full_sync()
    assert again["state"] == "done"
    assert again["counts"].get("held") == 1
    assert await family_name(tenant, 2) == "Held"
    assert (await tenant.status())["permission_loss"]

    company.show_extension_section(SKIP)
    lifted = await tenant.full_sync()
    assert lifted["state"] == "done"
    status = await tenant.status()
    assert status["permission_loss"] is None
    assert status["skip_field_warning"] is None
    assert await tenant.profile(3) is None  # still ticked: still excluded
    assert (await tenant.consistency()).mismatches == []


async def test_accepting_the_loss_lifts_the_flag_and_syncs_the_previously_excluded(
    service: Service,
) -> None:
    company = service.registry.add(small_company(rate_limit=None))
    company.set_extension(3, SKIP, True)
    tenant = await service.add_tenant(company)
    await tenant.full_sync()
    company.hide_extension_section(SKIP)  # the customer removed the checkbox on purpose
    assert (await tenant.full_sync())["state"] == "held"

    accepted = await tenant.full_sync(accept_skip_field_loss=True)
    assert accepted["state"] == "done"
    assert (await tenant.status())["permission_loss"] is None
    chloe = await tenant.profile(3)
    assert chloe is not None
    assert chloe.managed
    assert (await tenant.consistency()).mismatches == []


async def test_one_field_vanishing_holds_that_employee_until_a_listing_decides(
    service: Service,
) -> None:
    company = service.registry.add(small_company(rate_limit=None))
    company.set_extension(3, SKIP, True)
    tenant = await service.add_tenant(company)
    await tenant.full_sync()
    del company.user(3)["extendedData"][SKIP]  # Chloé's field is gone, the others' are not
    await tenant.send(company.update(3, lastName="Durand-Roy"))
    await tenant.settle()
    history = await history_of(tenant, 3)  # newest first
    held = next(entry for entry in history if entry["action"] == "held")
    assert "last seen excluded" in held["reason"]
    assert held["written"] is False
    # The one read wrote nothing: a creation can only come after the hold, from a complete
    # listing (the worker's tick may start one as soon as the hold lands: nothing waits).
    assert "create" not in [entry["action"] for entry in history[history.index(held) :]]
    assert (await tenant.status())["permission_loss"] is None  # one read proves no loss

    run = await tenant.full_sync()  # the field shows on the others: Chloé's is unticked
    assert run["state"] == "done"
    assert await family_name(tenant, 3) == "Durand-Roy"
    # Created by the listing (the kept employee may be synced once more as its hold lifts).
    actions = [entry["action"] for entry in await history_of(tenant, 3)]
    assert "create" in actions[: actions.index("held")], actions

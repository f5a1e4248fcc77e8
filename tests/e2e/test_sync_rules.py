"""Every cell of the sync-rules table, end to end: Lucca simulator -> signed webhook ->
web app -> ARQ worker -> real scim2-server, over loopback, with the real Redis."""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

import pytest

from app.core import scim
from app.core.profile import ElevoProfile
from tests.e2e.harness import Service, Tenant, eventually
from tests.e2e.stories import hire, small_company, yesterday

pytestmark = pytest.mark.e2e

CUSTOM = {"cost_center": "extendedData.e_cost_center", "entity": "legalEntity.name"}


@pytest.fixture
async def acme(service: Service) -> Tenant:
    company = service.registry.add(small_company(rate_limit=None))
    tenant = await service.add_tenant(company, custom_fields=CUSTOM)
    run = await tenant.full_sync()
    assert run["state"] == "done"
    return tenant


async def profile_where(
    tenant: Tenant, user_id: int, check: Any, timeout: float = 20.0
) -> ElevoProfile:
    async def probe() -> ElevoProfile | None:
        profile = await tenant.profile(user_id)
        return profile if profile is not None and check(profile) else None

    return await eventually(probe, timeout=timeout)


async def last_action(tenant: Tenant, user_id: int) -> str:
    # The history is written just after the Elevo write a test waited for: wait for it too.
    async def probe() -> str | None:
        history = await tenant.service.resources.records.history(tenant.name, str(user_id))
        return str(history[0]["action"]) if history else None

    return await eventually(probe, timeout=5.0)


async def test_a_hire_creates_a_profile_with_every_synced_field(acme: Tenant) -> None:
    company = acme.company
    events = hire(company, 10, "Eve", "Moreau", title="Designer", manager=2, department=2)
    events += company.set_extension(10, "e_cost_center", "CC-42")
    assert set(await acme.send(events)) == {202}

    eve = await profile_where(acme, 10, lambda p: True)
    bob = await acme.profile(2)
    assert bob is not None
    assert eve.user_name == f"eve.moreau@{company.subdomain}.test"
    assert eve.attributes[scim.GIVEN_NAME] == "Eve"
    assert eve.attributes[scim.FAMILY_NAME] == "Moreau"
    assert eve.attributes[scim.TITLE] == "Designer"
    assert eve.attributes[scim.EMPLOYEE_NUMBER] == "00010"
    assert eve.attributes[scim.DEPARTMENT] == "Sales"
    assert eve.attributes[scim.MANAGER] == bob.id
    assert eve.attributes[scim.WORK_START_DATE] == "2021-09-01"
    assert eve.attributes[scim.WORK_EMAIL] == eve.user_name
    assert eve.attributes[scim.custom_field_path("cost_center")] == "CC-42"
    assert eve.attributes[scim.custom_field_path("entity")] == "Acme SAS"
    assert eve.managed
    assert eve.active
    assert eve.external_id == "10"


async def test_a_field_change_updates_only_that_field(acme: Tenant) -> None:
    before = await acme.profile(3)
    assert before is not None
    await acme.send(acme.company.update(3, lastName="Durand-Roy"))

    after = await profile_where(acme, 3, lambda p: p.attributes[scim.FAMILY_NAME] == "Durand-Roy")
    history = await acme.service.resources.records.history(acme.name, "3")
    assert history[0]["action"] == "update"
    assert history[0]["diff"] == {scim.FAMILY_NAME: {"old": "Durand", "new": "Durand-Roy"}}
    assert after.id == before.id
    assert {k: v for k, v in after.attributes.items() if k != scim.FAMILY_NAME} == {
        k: v for k, v in before.attributes.items() if k != scim.FAMILY_NAME
    }


async def test_a_departure_suspends_and_a_rehire_reactivates(acme: Tenant) -> None:
    company = acme.company
    await acme.send(company.set_contract(4, end=yesterday(company)))
    suspended = await profile_where(acme, 4, lambda p: not p.active)
    assert suspended.managed  # still managed: the fields stay equal to Lucca
    assert await last_action(acme, 4) == "suspend"

    await acme.send(company.update(4, lastName="Petit-Jean"))
    left = await profile_where(acme, 4, lambda p: p.attributes[scim.FAMILY_NAME] == "Petit-Jean")
    assert not left.active  # a left employee's fields follow Lucca, suspended

    await acme.send(company.set_contract(4, end=None))
    await profile_where(acme, 4, lambda p: p.active)
    assert await last_action(acme, 4) == "reactivate"


async def test_a_contract_ending_today_keeps_the_profile_active(acme: Tenant) -> None:
    company = acme.company
    await acme.send(company.set_contract(3, end=company.today()))
    await acme.settle()
    profile = await acme.profile(3)
    assert profile is not None
    assert profile.active
    # Unchanged: counted in its run, never recorded in the history (sync-rules.md).
    assert await last_action(acme, 3) == "create"


async def test_exclusion_releases_and_never_suspends(acme: Tenant) -> None:
    company = acme.company
    events = company.set_extension(2, "e_skip_elevo_sync", True)
    events += company.set_contract(2, end=yesterday(company))
    await acme.send(events)

    released = await profile_where(acme, 2, lambda p: not p.managed)
    assert released.active  # excluded wins over left: released, never suspended
    assert released.sync_source is None
    assert released.attributes[scim.GIVEN_NAME] == "Bob"  # nothing else touched
    assert await last_action(acme, 2) in {"release", "skipped"}

    await acme.send(company.set_extension(2, "e_skip_elevo_sync", False))
    await acme.settle()
    profile = await acme.profile(2)
    # No longer excluded but left: a profile the sync does not manage is not touched.
    assert profile is not None
    assert not profile.managed
    assert profile.active
    assert await last_action(acme, 2) == "skipped"


async def test_an_excluded_or_former_employee_gets_no_profile(acme: Tenant) -> None:
    company = acme.company
    events = hire(company, 20, "Xavier", "Skip", extended={"e_skip_elevo_sync": True})
    events += hire(company, 21, "Yann", "Gone", end=date(2020, 1, 31), start=date(2019, 1, 1))
    await acme.send(events)
    await acme.settle()
    assert await acme.profile(20) is None
    assert await acme.profile(21) is None
    assert await last_action(acme, 20) == "skipped"
    assert await last_action(acme, 21) == "skipped"


async def test_a_user_gone_from_lucca_is_suspended(acme: Tenant) -> None:
    await acme.send(acme.company.delete(3))
    gone = await profile_where(acme, 3, lambda p: not p.active)
    assert gone.attributes[scim.FAMILY_NAME] == "Durand"  # keeps its last values
    assert await last_action(acme, 3) == "suspend"


async def test_a_hand_made_profile_is_adopted_by_user_name(acme: Tenant) -> None:
    company = acme.company
    mail = f"fanny.blanc@{company.subdomain}.test"
    made = await acme.elevo.create(
        {"schemas": [scim.CORE_USER], "userName": mail.upper(), "name": {"givenName": "F"}}
    )
    await acme.send(hire(company, 30, "Fanny", "Blanc"))

    adopted = await profile_where(acme, 30, lambda p: p.managed)
    assert adopted.id == made.id  # adopted, never duplicated
    assert adopted.attributes[scim.GIVEN_NAME] == "Fanny"
    assert await last_action(acme, 30) == "adopt"


async def test_a_released_profile_is_taken_back(acme: Tenant) -> None:
    company = acme.company
    await acme.send(company.set_extension(3, "e_skip_elevo_sync", True))
    released = await profile_where(acme, 3, lambda p: not p.managed)
    await acme.send(company.set_extension(3, "e_skip_elevo_sync", False))
    taken = await profile_where(acme, 3, lambda p: p.managed)
    assert taken.id == released.id
    assert await last_action(acme, 3) == "adopt"


async def test_a_profile_owned_by_someone_else_is_a_conflict(acme: Tenant) -> None:
    company = acme.company
    mail = f"gus.noir@{company.subdomain}.test"
    other = await acme.elevo.create(
        {"schemas": [scim.CORE_USER], "userName": mail, "externalId": "hr-999"}
    )
    await acme.send(hire(company, 31, "Gus", "Noir"))
    await acme.settle()

    assert await last_action(acme, 31) == "conflict"
    untouched = await acme.elevo.get(other.id)
    assert untouched is not None
    assert untouched.external_id == "hr-999"
    status = await acme.service.http.get(
        f"{acme.service.url}/sync/{acme.name}", headers=acme.service.admin_headers
    )
    assert "31" in status.json()["failing_users"]


async def test_a_manager_without_profile_is_created_first(acme: Tenant) -> None:
    company = acme.company
    hire(company, 40, "Hugo", "Chef", manager=1)  # no event sent for the manager
    await acme.send(hire(company, 41, "Inès", "Report", manager=40))

    report = await profile_where(acme, 41, lambda p: True)
    manager = await acme.profile(40)
    assert manager is not None
    assert manager.managed
    assert report.attributes[scim.MANAGER] == manager.id


async def test_a_manager_cycle_resolves_without_looping(acme: Tenant) -> None:
    company = acme.company
    hire(company, 50, "Jade", "Cycle", manager=None)
    hire(company, 51, "Karl", "Cycle", manager=50)
    company.set_job(50, manager_id=51)  # 50 <-> 51, neither has a profile yet
    await acme.send(company.update(51, lastName="Cyclone"))  # one notice is enough

    async def linked() -> bool:
        jade, karl = await acme.profile(50), await acme.profile(51)
        return bool(
            jade
            and karl
            and jade.attributes[scim.MANAGER] == karl.id
            and karl.attributes[scim.MANAGER] == jade.id
        )

    assert await eventually(linked)


async def test_a_self_managed_employee_has_no_manager(acme: Tenant) -> None:
    await acme.send(acme.company.set_job(1, manager_id=1))
    await acme.settle()
    ada = await acme.profile(1)
    assert ada is not None
    assert ada.attributes[scim.MANAGER] is None


async def test_a_department_rename_reaches_every_member(acme: Tenant) -> None:
    await acme.send(acme.company.rename_department(1, "Research"))

    async def renamed() -> bool:
        profiles = [await acme.profile(uid) for uid in (1, 2, 3)]
        return all(p and p.attributes[scim.DEPARTMENT] == "Research" for p in profiles)

    assert await eventually(renamed)
    dan = await acme.profile(4)
    assert dan is not None
    assert dan.attributes[scim.DEPARTMENT] == "Sales"


async def test_a_tenant_specific_skip_code(service: Service) -> None:
    company = service.registry.add(small_company(rate_limit=None, skip_code="e_no_elevo"))
    company.set_extension(2, "e_no_elevo", True)
    company.set_extension(3, "e_no_elevo", False)
    company.set_extension(3, "e_skip_elevo_sync", True)  # another code: not this tenant's
    tenant = await service.add_tenant(company, skip_field="e_no_elevo")
    await tenant.full_sync()
    assert await tenant.profile(2) is None
    chloe = await tenant.profile(3)
    assert chloe is not None
    assert chloe.managed


async def test_a_field_of_the_wrong_type_is_an_error_with_no_write(acme: Tenant) -> None:
    company = acme.company
    before = await acme.profile(2)
    events = company.update(2, lastName="Martinez")
    company.user(2)["firstName"] = 42  # Lucca answers a number where text belongs
    await acme.send(events)
    await acme.settle()
    after = await acme.profile(2)
    assert after == before
    history = await acme.service.resources.records.history(acme.name, "2")
    assert history[0]["action"] == "error"
    assert "firstName should be text" in history[0]["reason"]


async def test_a_hidden_skip_field_is_unticked_on_a_webhook_read(acme: Tenant) -> None:
    # Only a complete listing judges a permission loss (tests/e2e/test_skip_field.py): one
    # read without the field syncs whoever was not last seen excluded.
    company = acme.company
    company.hide_extension_section("e_skip_elevo_sync")
    await acme.send(company.update(3, lastName="Hidden"))
    chloe = await profile_where(acme, 3, lambda p: p.attributes[scim.FAMILY_NAME] == "Hidden")
    assert chloe.managed
    status = await acme.service.http.get(
        f"{acme.service.url}/sync/{acme.name}", headers=acme.service.admin_headers
    )
    assert status.json()["permission_loss"] is None


async def test_two_quick_changes_to_one_user_end_in_the_last(acme: Tenant) -> None:
    company = acme.company
    first = company.set_job(3, job_title="Lead engineer")
    second = company.set_job(3, job_title="Head of engineering")
    assert set(await acme.send(first + second)) == {202}
    await profile_where(acme, 3, lambda p: p.attributes[scim.TITLE] == "Head of engineering")
    await acme.settle()
    chloe = await acme.profile(3)
    assert chloe is not None
    assert chloe.attributes[scim.TITLE] == "Head of engineering"


async def test_a_change_landing_while_the_users_job_runs_still_reaches_elevo(
    acme: Tenant,
) -> None:
    company = acme.company
    company.faults.latency = 0.8  # the first job waits in Lucca's answer
    await acme.send(company.set_job(2, job_title="Staff engineer"))

    async def running() -> bool:
        return bool(await acme.service.resources.redis.exists(f"t:{acme.name}:busy:2"))

    await eventually(running, interval=0.01)
    await acme.send(company.set_job(2, job_title="Principal engineer"))
    sent = time.monotonic()
    company.faults.latency = 0.0
    await profile_where(acme, 2, lambda p: p.attributes[scim.TITLE] == "Principal engineer")
    # It waits for the running job and its cooldown, not for the running job's lock to expire.
    assert time.monotonic() - sent < 5
    history = await acme.service.resources.records.history(acme.name, "2")
    assert len([h for h in history if h["run"]]) >= 2  # the second notice ran its own sync


async def test_a_future_departure_is_scheduled_for_the_day_after(acme: Tenant) -> None:
    company = acme.company
    last_day = company.today() + timedelta(days=3)
    await acme.send(company.set_contract(4, end=last_day))
    await acme.settle()
    job_key = f"arq:job:due:{acme.name}:4:{last_day.isoformat()}"
    assert await acme.service.resources.redis.exists(job_key)


async def test_reports_get_their_manager_once_the_manager_gets_a_profile(acme: Tenant) -> None:
    company = acme.company
    hire(company, 60, "Lea", "Later", extended={"e_skip_elevo_sync": True})  # excluded
    await acme.send(hire(company, 61, "Max", "Report", manager=60))
    report = await profile_where(acme, 61, lambda p: True)
    assert report.attributes[scim.MANAGER] is None  # the manager has no profile: left empty

    await acme.send(company.set_extension(60, "e_skip_elevo_sync", False))
    lea = await profile_where(acme, 60, lambda p: p.managed)
    await profile_where(acme, 61, lambda p: p.attributes[scim.MANAGER] == lea.id)

"""Nothing waits for ever and nothing is dropped (sync-rules.md; issue 10, points 2 and 4), end
to end: Lucca simulator -> web app -> worker -> scim2-server."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest

from app.core import scim
from app.service import blocks
from app.store import queue
from simulators.lucca.generator import generate_company
from tests.e2e.harness import SCIM_TOKEN, Service, Tenant, eventually
from tests.e2e.stories import small_company

pytestmark = pytest.mark.e2e

SKIP = "e_skip_elevo_sync"


async def put_token(tenant: Tenant, token: str) -> None:
    service, company = tenant.service, tenant.company
    body = {
        "lucca": {"subdomain": company.subdomain, "api_key": company.api_key},
        "elevo": {"scim_url": tenant.config.elevo_scim_url, "token": token},
    }
    response = await service.http.put(
        f"{service.url}/tenants/{tenant.name}", json=body, headers=service.admin_headers
    )
    assert response.status_code == 200, response.text


async def post(tenant: Tenant, path: str, body: Any = None) -> dict[str, Any]:
    service = tenant.service
    response = await service.http.post(
        f"{service.url}{path}", json=body, headers=service.admin_headers
    )
    assert response.status_code in {200, 202}, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def family_names(tenant: Tenant) -> dict[str, str]:
    return {
        p.external_id: str(p.attributes.get(scim.FAMILY_NAME))
        for p in await tenant.profiles()
        if p.external_id
    }


async def test_20_changes_while_elevo_refuses_the_token_land_once_the_right_one_is_put(
    service: Service,
) -> None:
    company = service.registry.add(
        generate_company(f"tok{secrets.token_hex(3)}", 40, seed=7, rate_limit=None)
    )
    tenant = await service.add_tenant(company)
    assert (await tenant.full_sync())["state"] == "done"
    await tenant.settle()  # the run's follow-ups too
    managed = sorted(
        (p.external_id for p in await tenant.profiles() if p.managed and p.active),
        key=lambda uid: int(uid or 0),
    )
    chosen = [int(uid) for uid in managed if uid][:20]
    assert len(chosen) == 20

    await put_token(tenant, "a-token-elevo-refuses")
    for index, user_id in enumerate(chosen):
        assert set(await tenant.send(company.update(user_id, lastName=f"Kept{index}"))) == {202}

    async def all_parked() -> dict[str, Any] | None:
        waiting = (await tenant.status())["waiting"]
        return waiting if waiting["users"] == 20 else None

    waiting = await eventually(all_parked, timeout=60)
    [reason] = waiting["reasons"]
    assert reason["reason"] == "elevo_token"
    assert "401" in reason["error"]
    history = await tenant.service.resources.records.history(tenant.name, str(chosen[0]))
    assert history[0]["action"] == "held"
    assert history[0]["reason"].startswith("waiting: Elevo refuses the tenant's token")
    assert not any(name.startswith("Kept") for name in (await family_names(tenant)).values())

    await put_token(tenant, SCIM_TOKEN)
    put_at = time.monotonic()

    async def all_landed() -> bool:
        names = await family_names(tenant)
        return all(names.get(str(uid)) == f"Kept{i}" for i, uid in enumerate(chosen))

    assert await eventually(all_landed, timeout=60)
    landed_in = time.monotonic() - put_at
    assert landed_in < 30, f"the 20 kept changes took {landed_in:.1f}s"
    await tenant.settle()
    status = await tenant.status()
    assert status["waiting"] == {"users": 0, "reasons": []}
    assert status["elevo_token_error"] is None
    unblocked = [run for run in status["runs"] if run["trigger"] == "unblocked"]
    assert unblocked[0]["counts"]["update"] == 20
    assert (await tenant.consistency()).mismatches == []


async def test_a_paused_tenant_keeps_its_changes_and_runs_and_applies_them_on_resume(
    service: Service,
) -> None:
    company = service.registry.add(small_company(rate_limit=None))
    tenant = await service.add_tenant(company)
    await tenant.full_sync()
    paused = await post(tenant, f"/tenants/{tenant.name}/pause", {"reason": "payroll audit"})
    assert (paused["paused"], paused["by"]) == (True, "admin")

    await tenant.send(company.update(2, lastName="Paused"))
    await tenant.send(company.set_job(3, job_title="Head of R&D"))
    run = await post(tenant, f"/sync/{tenant.name}", {"mode": "full"})
    held = await tenant.wait_run(run["run"])
    assert held["state"] == "held"
    assert "paused" in held["waiting"]
    await tenant.settle()
    status = await tenant.status()
    assert status["paused"] == {"since": paused["since"], "by": "admin", "reason": "payroll audit"}
    assert status["waiting"]["users"] == 2
    bob = await tenant.profile(2)
    assert bob is not None
    assert bob.attributes[scim.FAMILY_NAME] == "Martin"  # nothing written while paused

    resumed = await post(tenant, f"/tenants/{tenant.name}/resume")
    assert len(resumed["runs"]) == 2  # the kept changes, and the full run asked meanwhile
    for run_id in resumed["runs"]:
        assert (await tenant.wait_run(run_id))["state"] == "done"
    await tenant.settle()
    bob = await tenant.profile(2)
    chloe = await tenant.profile(3)
    assert bob is not None
    assert chloe is not None
    assert bob.attributes[scim.FAMILY_NAME] == "Paused"
    assert chloe.attributes[scim.TITLE] == "Head of R&D"
    status = await tenant.status()
    assert status["paused"] is None
    assert status["last_pause"]["paused_by"] == "admin"
    assert (await tenant.consistency()).mismatches == []


async def test_a_manager_whose_sync_fails_never_costs_the_reports_their_manager(
    service: Service,
) -> None:
    company = service.registry.add(small_company(rate_limit=None))
    tenant = await service.add_tenant(company)
    await tenant.full_sync()
    ada = await tenant.profile(1)
    assert ada is not None

    company.set_extension(1, SKIP, "yes")  # Ada's checkbox holds a value that is no boolean
    company.set_job(2, job_title="Staff engineer")
    run = await tenant.full_sync()
    assert run["counts"]["error"] == 1
    assert "1" in run["errors"]
    for report in (2, 3):
        profile = await tenant.profile(report)
        assert profile is not None
        assert profile.attributes[scim.MANAGER] == ada.id  # kept
    bob = await tenant.profile(2)
    assert bob is not None
    assert bob.attributes[scim.TITLE] == "Staff engineer"  # the report itself still synced

    # Ada is fixed: her reports sync again right after her, not at the next full run (their
    # syncs find them unchanged, which their history does not record: their generations show
    # the syncs queued).
    redis = service.resources.redis
    before = {uid: await queue.latest_generation(redis, tenant.name, uid) for uid in ("2", "3")}
    await tenant.send(company.set_extension(1, SKIP, False))

    async def reports_synced_again() -> bool:
        now = {uid: await queue.latest_generation(redis, tenant.name, uid) for uid in before}
        return all((now[uid] or 0) > (before[uid] or 0) for uid in before)

    assert await eventually(reports_synced_again, timeout=30)
    await tenant.settle()
    assert (await tenant.status())["failing_users"] == {}
    assert (await tenant.consistency()).mismatches == []


async def test_someone_held_on_one_read_is_decided_within_a_minute_not_at_night(
    service: Service,
) -> None:
    company = service.registry.add(small_company(rate_limit=None))
    tenant = await service.add_tenant(company)
    await tenant.full_sync()
    await tenant.send(company.set_extension(2, SKIP, True))  # Bob is excluded: released
    await tenant.settle()
    released = await tenant.profile(2)
    assert released is not None
    assert not released.managed

    del company.user(2)["extendedData"][SKIP]  # cleared in Lucca: absent, others still show it
    await tenant.send(company.update(2, lastName="Unticked"))
    await tenant.settle()
    history = await service.resources.records.history(tenant.name, "2")
    assert history[0]["action"] == "held"
    assert (await tenant.status())["waiting"]["reasons"][0]["reason"] == "skip_field"

    tenant_ctx = await service.resources.contexts.get(tenant.name)
    assert tenant_ctx is not None
    await blocks.probe_tenant(service.resources, tenant_ctx)  # what the minute's tick does
    [check] = [r for r in (await tenant.status())["runs"] if r["trigger"] == "skip-field-check"]
    assert (await tenant.wait_run(check["id"]))["state"] == "done"
    await tenant.settle()
    bob = await tenant.profile(2)
    assert bob is not None
    assert bob.managed  # taken back: the listing showed the field on the others
    assert bob.attributes[scim.FAMILY_NAME] == "Unticked"
    assert (await tenant.status())["waiting"]["users"] == 0
    assert (await tenant.consistency()).mismatches == []

"""Full reconciliation, dry runs, the safety guard, polls, effective dates and the nightly cron,
against the real scim2-server and the Lucca simulator."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from app.core import scim
from app.core.tenant import GuardConfig
from app.service.runs import recent_run_documents
from simulators.lucca.company import Company
from simulators.lucca.generator import generate_company
from tests.e2e.harness import Service, Tenant
from tests.e2e.stories import small_company, yesterday
from workers.jobs import sync_user_due, tick

pytestmark = pytest.mark.e2e

SIZE = 300


def elevo_writes(tenant: str) -> float:
    total = 0.0
    for operation in ("create", "patch"):
        for status in ("200", "201", "204"):
            value = REGISTRY.get_sample_value(
                "sync_elevo_requests_total",
                {"tenant": tenant, "operation": operation, "status": status},
            )
            total += value or 0.0
    return total


@pytest.fixture
async def big(service: Service) -> Tenant:
    company = service.registry.add(
        generate_company(f"big{id(service)}", SIZE, seed=7, rate_limit=None)
    )
    return await service.add_tenant(company, custom_fields={"cc": "extendedData.e_cost_center"})


async def test_a_full_run_converges_then_a_second_run_writes_nothing(big: Tenant) -> None:
    first = await big.full_sync()
    assert first["state"] == "done", first
    report = await big.consistency()
    assert report.mismatches == [], report.mismatches[:5]
    assert first["counts"]["create"] > 0.8 * SIZE

    writes_before = elevo_writes(big.name)
    big.company.requests.reset()
    second = await big.full_sync()
    assert second["state"] == "done"
    assert elevo_writes(big.name) == writes_before  # not one PATCH or POST
    assert set(second["counts"]) <= {"unchanged", "skipped", "error", "conflict"}
    lucca_requests = big.company.requests.listings + big.company.requests.by_id
    assert lucca_requests <= math.ceil(SIZE / 1000) + 1


async def test_hand_edits_in_elevo_are_repaired(big: Tenant) -> None:
    await big.full_sync()
    managed = {p.external_id for p in await big.profiles() if p.managed and p.active}
    leaver = next(
        u for u in big.company.users() if str(u["id"]) in managed and _can_leave(big.company, u)
    )
    big.company.set_contract(leaver["id"], end=yesterday(big.company))
    await big.full_sync()
    profiles = [p for p in await big.profiles() if p.managed]
    edited = next(p for p in profiles if p.active)
    revived = next(p for p in profiles if not p.active)
    await big.elevo.patch(
        edited.id, [{"op": "replace", "path": "title", "value": "Edited by hand"}]
    )
    await big.elevo.patch(revived.id, [{"op": "replace", "path": "active", "value": True}])
    assert (await big.consistency()).mismatches  # the drift is visible

    run = await big.full_sync()
    assert run["counts"].get("update", 0) + run["counts"].get("suspend", 0) >= 2
    assert (await big.consistency()).mismatches == []


async def test_a_dry_run_writes_nothing_and_its_plan_is_what_the_run_does(big: Tenant) -> None:
    writes_before = elevo_writes(big.name)
    dry = await big.full_sync(dry_run=True)
    assert dry["state"] == "done"
    assert dry["dry_run"] is True
    assert elevo_writes(big.name) == writes_before
    assert await big.profiles() == []
    planned = {entry["user"]: entry["action"] for entry in dry["plan"]}
    creates = [e for e in dry["plan"] if e["action"] == "create"]
    assert creates
    assert all(e["diff"][scim.USER_NAME]["old"] is None for e in creates)

    real = await big.full_sync()
    history = big.service.resources.records
    done = {}
    for user_id in planned:
        entries = await history.history(big.name, user_id)
        real_entry = [e for e in entries if e["run"] == real["id"]][-1]  # its first decision
        done[user_id] = real_entry["action"]
    # A plan sees no managers that do not exist yet; the real run creates them first.
    assert {u: a for u, a in planned.items()} == done


def _can_leave(company: Company, user: dict[str, Any]) -> bool:
    started = datetime.fromisoformat(user["dtContractStart"]).date()
    return user["dtContractEnd"] is None and started < yesterday(company)


async def _departed(company: Company, share: float) -> None:
    active = [u for u in company.users() if _can_leave(company, u)]
    for user in active[: int(len(active) * share)]:
        company.set_contract(user["id"], end=yesterday(company))


async def test_the_guard_holds_a_mass_departure_until_confirmed(big: Tenant) -> None:
    await big.full_sync()
    await _departed(big.company, 0.3)
    held = await big.full_sync()
    assert held["state"] == "held"
    assert len(held["held"]) > 5
    assert all(p.active for p in await big.profiles() if p.external_id in set(held["held"]))
    status = await big.service.http.get(
        f"{big.service.url}/sync/{big.name}", headers=big.service.admin_headers
    )
    guard = status.json()["safety_guard"]
    assert guard["holding"]
    assert guard["users"] == held["held"]

    sync_url = f"{big.service.url}/sync/{big.name}"
    headers = big.service.admin_headers
    unnamed = await big.service.http.post(
        sync_url, json={"mode": "full", "confirm_suspensions": True}, headers=headers
    )
    assert unnamed.status_code == 400
    assert held["id"] in unnamed.json()["detail"]

    confirmed = await big.full_sync(confirm_suspensions=held["id"])
    assert confirmed["state"] == "done", confirmed
    assert confirmed["confirms"] == held["id"]
    assert confirmed["counts"]["suspend"] == len(held["held"]), confirmed["counts"]
    assert (await big.consistency()).mismatches == []
    status = await big.service.http.get(sync_url, headers=headers)
    assert not status.json()["safety_guard"]["holding"]
    resolved = await big.wait_run(held["id"])
    assert resolved["resolution"] == "confirmed"
    assert (resolved["resolved_by_run"], resolved["resolved_by"]) == (confirmed["id"], "admin")
    again = await big.service.http.post(
        sync_url, json={"mode": "full", "confirm_suspensions": held["id"]}, headers=headers
    )
    assert again.status_code == 409
    assert again.json()["error"] == "conflict"
    assert confirmed["id"] in again.json()["detail"]


async def test_a_confirmation_while_a_full_run_runs_is_a_conflict(big: Tenant) -> None:
    await big.full_sync()
    await _departed(big.company, 0.3)
    held = await big.full_sync()
    assert held["state"] == "held"
    big.company.faults.latency = 0.3  # the next full run is still running when confirmed
    running = await big.service.http.post(
        f"{big.service.url}/sync/{big.name}", json={}, headers=big.service.admin_headers
    )
    refused = await big.service.http.post(
        f"{big.service.url}/sync/{big.name}",
        json={"confirm_suspensions": held["id"]},
        headers=big.service.admin_headers,
    )
    big.company.faults.latency = 0.0
    running_id = running.json()["run"]
    assert refused.status_code == 409, refused.text
    assert running_id in refused.json()["detail"]
    rerun = await big.wait_run(running_id)
    assert rerun["state"] == "held"  # it weighed the suspensions again
    superseded = await big.wait_run(held["id"])
    assert (superseded["resolution"], superseded["resolved_by_run"]) == ("superseded", running_id)
    late = await big.service.http.post(
        f"{big.service.url}/sync/{big.name}",
        json={"confirm_suspensions": held["id"]},
        headers=big.service.admin_headers,
    )
    assert late.status_code == 409
    assert running_id in late.json()["detail"]


async def test_the_guard_holds_when_lucca_returns_nobody(service: Service) -> None:
    company = service.registry.add(small_company(rate_limit=None))
    tenant = await service.add_tenant(company, guard=GuardConfig(max_suspend_count=100))
    await tenant.full_sync()
    for user in list(company.users()):
        company.delete(user["id"])
    held = await tenant.full_sync()
    assert held["state"] == "held"
    assert all(p.active for p in await tenant.profiles())


async def test_a_listing_cut_short_suspends_nobody(big: Tenant) -> None:
    await big.full_sync()
    big.company.faults.truncate_to = 100  # the page comes back with 100 users, looking complete
    run = await big.full_sync()
    big.company.faults.truncate_to = None
    assert run["state"] == "done"
    assert run["counts"].get("suspend", 0) == 0
    assert (await big.consistency()).mismatches == []


async def test_a_failed_listing_suspends_nobody(big: Tenant) -> None:
    await big.full_sync()
    await _departed(big.company, 0.02)
    big.company.faults.force(401, count=50)  # the key is revoked mid-run
    run = await big.full_sync()
    big.company.faults.clear()
    # It waits for a key that works, and runs again then (issue 10, "nothing waits for ever").
    assert run["state"] == "held"
    assert run["waiting"].startswith("waiting: Lucca refuses the tenant's API key")
    assert run.get("counts", {}).get("suspend", 0) == 0


async def test_the_poll_picks_up_changes_made_without_webhooks(service: Service) -> None:
    company = service.registry.add(small_company(rate_limit=None))
    tenant = await service.add_tenant(company)
    await tenant.full_sync()
    first = await _poll(tenant)
    assert first["state"] == "done"
    company.update(3, lastName="Polled")  # no webhook sent
    second = await _poll(tenant)
    assert second["expected"] >= 1
    await tenant.settle()
    chloe = await tenant.profile(3)
    assert chloe is not None
    assert chloe.attributes[scim.FAMILY_NAME] == "Polled"


async def test_a_change_made_during_a_poll_is_read_by_the_next(service: Service) -> None:
    company = service.registry.add(small_company(rate_limit=None))
    tenant = await service.add_tenant(company)
    await tenant.full_sync()
    await _poll(tenant)
    company.faults.latency = 0.5
    response = await _start_poll(tenant)
    await asyncio.sleep(0.25)  # the poll's listing is in flight
    company.update(2, lastName="During")
    company.faults.latency = 0.0
    await tenant.wait_run(response)
    await _poll(tenant)
    await tenant.settle()
    bob = await tenant.profile(2)
    assert bob is not None
    assert bob.attributes[scim.FAMILY_NAME] == "During"


async def _start_poll(tenant: Tenant) -> str:
    response = await tenant.service.http.post(
        f"{tenant.service.url}/sync/{tenant.name}",
        json={"mode": "changes"},
        headers=tenant.service.admin_headers,
    )
    assert response.status_code == 202
    return str(response.json()["run"])


async def _poll(tenant: Tenant) -> dict[str, Any]:
    run = await tenant.wait_run(await _start_poll(tenant))
    await tenant.settle()
    return await tenant.wait_run(run["id"])


async def test_a_contract_whose_last_day_is_today_is_suspended_at_midnight(
    service: Service, clock: Any
) -> None:
    company = service.registry.add(small_company(rate_limit=None))
    tenant = await service.add_tenant(company)
    last_day = company.today()
    company.set_contract(4, end=last_day)
    await tenant.full_sync()
    dan = await tenant.profile(4)
    assert dan is not None
    assert dan.active

    job_id = f"due:{tenant.name}:4:{last_day.isoformat()}"
    score = await service.resources.redis.zscore("arq:queue", job_id)
    midnight = datetime.combine(last_day + timedelta(days=1), datetime.min.time())
    expected = midnight.replace(tzinfo=company.tz).timestamp() * 1000
    assert score == expected  # queued for 00:00 tomorrow, tenant time

    # Tomorrow comes (both clocks move; nothing sleeps) and the scheduled job runs.
    shift = expected / 1000 - datetime.now().timestamp() + 1
    clock.offset_seconds = shift
    company.clock = lambda: clock()
    await sync_user_due({"resources": service.resources}, tenant.name, "4")
    await tenant.settle()
    dan = await tenant.profile(4)
    assert dan is not None
    assert not dan.active


async def test_two_workers_start_one_nightly_run_per_tenant(service: Service, clock: Any) -> None:
    company = service.registry.add(small_company(rate_limit=None))
    tenant = await service.add_tenant(company)
    config = await service.resources.tenants.get(tenant.name)
    assert config is not None
    hour, minute = map(int, config.nightly_at.split(":"))  # the tenant's own, none configured
    local = datetime.now(company.tz)
    due = local.replace(hour=hour, minute=minute, second=5) + timedelta(days=1)
    clock.offset_seconds = due.timestamp() - local.timestamp()
    service.resources.contexts.forget(tenant.name)
    ctx = {"resources": service.resources}
    started = await asyncio.gather(tick(ctx), tick(ctx), tick(ctx))
    assert sum(started) == 1
    runs = await recent_run_documents(service.resources, tenant.name)
    nightly = [r for r in runs if r["trigger"] == "nightly"]
    assert len(nightly) == 1

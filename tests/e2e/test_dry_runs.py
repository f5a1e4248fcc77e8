"""A dry run never writes, in every mode (full, changes, users): no Elevo write request, no
watermark, no sync state, no employee's history; it never merges with a real run; and the real
run afterwards applies the change the plan showed. Over loopback, against scim2-server."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from app.core import scim
from app.store import keys
from tests.e2e.harness import Service, Tenant
from tests.e2e.stories import small_company

pytestmark = pytest.mark.e2e

WRITES = {"create", "patch"}


def elevo_write_requests(tenant: str) -> float:
    """Every create and PATCH sent to Elevo for the tenant, whatever its answer."""
    total = 0.0
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            labels = sample.labels
            if (
                sample.name == "sync_elevo_requests_total"
                and labels.get("tenant") == tenant
                and labels.get("operation") in WRITES
            ):
                total += sample.value
    return total


async def start(tenant: Tenant, body: dict[str, Any]) -> str:
    response = await tenant.service.http.post(
        f"{tenant.service.url}/sync/{tenant.name}", json=body, headers=tenant.service.admin_headers
    )
    assert response.status_code == 202, response.text
    return str(response.json()["run"])


async def run_to_end(tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    """Start a run, wait for it and for the jobs it queued; its record."""
    run_id = await start(tenant, body)
    await tenant.wait_run(run_id)
    await tenant.settle()
    return await tenant.wait_run(run_id)


async def sync_state(tenant: Tenant, *user_ids: str) -> dict[str, Any]:
    """What a dry run must leave as it is: the watermark, the status notes, the id map, the
    failing users and these users' histories."""
    res = tenant.service.resources
    redis = res.redis
    return {
        "watermark": await redis.get(keys.watermark(tenant.name)),
        "notes": await res.records.notes(tenant.name),
        "idmap": await redis.hgetall(keys.idmap(tenant.name)),
        "errors": await res.records.user_errors(tenant.name),
        "histories": {uid: await res.records.history(tenant.name, uid) for uid in user_ids},
    }


@pytest.fixture
async def acme(service: Service) -> Tenant:
    """The small company, synced, polled once (the watermark is set)."""
    company = service.registry.add(small_company(rate_limit=None))
    tenant = await service.add_tenant(company)
    assert (await tenant.full_sync())["state"] == "done"
    assert (await run_to_end(tenant, {"mode": "changes"}))["state"] == "done"
    return tenant


async def family_name(tenant: Tenant, user_id: int) -> str:
    profile = await tenant.profile(user_id)
    assert profile is not None
    return str(profile.attributes[scim.FAMILY_NAME])


def planned(run: dict[str, Any]) -> dict[str, str]:
    return {entry["user"]: entry["action"] for entry in run["plan"]}


async def test_a_dry_poll_writes_nothing_and_the_real_poll_still_finds_the_change(
    acme: Tenant,
) -> None:
    acme.company.update(3, lastName="Planned")  # no webhook sent
    before, writes = await sync_state(acme, "3"), elevo_write_requests(acme.name)
    dry = await run_to_end(acme, {"mode": "changes", "dry_run": True})
    assert (dry["state"], dry["dry_run"]) == ("done", True)
    assert planned(dry)["3"] == "update"
    assert elevo_write_requests(acme.name) == writes
    assert await sync_state(acme, "3") == before  # the watermark did not move
    assert await family_name(acme, 3) == "Durand"

    real = await run_to_end(acme, {"mode": "changes"})
    assert real["state"] == "done"
    assert await family_name(acme, 3) == "Planned"


async def test_a_dry_user_list_writes_nothing_and_the_real_one_applies_the_change(
    acme: Tenant,
) -> None:
    acme.company.update(2, lastName="Listed")
    before, writes = await sync_state(acme, "2"), elevo_write_requests(acme.name)
    # "0002" is user 2, and a user listed twice counts once: the run still ends.
    dry = await run_to_end(acme, {"users": ["0002", 2], "dry_run": True})
    assert (dry["state"], dry["expected"], dry["processed"]) == ("done", 1, 1)
    assert planned(dry) == {"2": "update"}
    assert elevo_write_requests(acme.name) == writes
    assert await sync_state(acme, "2") == before
    assert await family_name(acme, 2) == "Martin"

    real = await run_to_end(acme, {"users": ["02", 2]})
    assert (real["state"], real["expected"]) == ("done", 1)
    assert await family_name(acme, 2) == "Listed"


async def test_a_dry_full_run_writes_nothing_and_never_merges_with_a_real_one(
    acme: Tenant,
) -> None:
    acme.company.update(4, lastName="Full")
    before, writes = await sync_state(acme, "4"), elevo_write_requests(acme.name)
    dry = await run_to_end(acme, {"mode": "full", "dry_run": True})
    assert (dry["state"], planned(dry)["4"]) == ("done", "update")
    assert elevo_write_requests(acme.name) == writes
    assert await sync_state(acme, "4") == before
    assert await family_name(acme, 4) == "Petit"

    # Asked together, in both orders, no run joins another.
    first_dry = await start(acme, {"mode": "full", "dry_run": True})
    real = await start(acme, {"mode": "full"})
    second_dry = await start(acme, {"mode": "full", "dry_run": True})
    assert len({first_dry, real, second_dry}) == 3
    runs = [await acme.wait_run(run_id) for run_id in (first_dry, real, second_dry)]
    assert [run["state"] for run in runs] == ["done", "done", "done"]
    assert [run["dry_run"] for run in runs] == [True, False, True]
    assert "merged_into" not in runs[0]
    assert "merged_into" not in runs[2]
    await acme.settle()
    assert await family_name(acme, 4) == "Full"

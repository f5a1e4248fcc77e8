"""Disconnecting a tenant (DELETE /tenants/{tenant}?release=true) against the real scim2-server:
every managed profile is given back (syncSource removed, nothing else), then the tenant goes;
a worker killed in the middle of it leaves a release that the next worker finishes."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest

from app.core import scim
from app.service import release
from simulators.lucca.generator import generate_company
from simulators.lucca.webhooks import make_event
from stack.checks import raw_users
from tests.e2e.harness import SCIM_TOKEN, Service, Tenant, eventually
from workers.closing import close_worker

pytestmark = pytest.mark.e2e

SIZE = 120
OUTSIDER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "outsider@example.com",
    "name": {"givenName": "Out", "familyName": "Sider"},
    "title": "Created by hand in Elevo",
}


@pytest.fixture
async def synced(service: Service) -> Tenant:
    company = service.registry.add(
        generate_company(f"rel{id(service)}", SIZE, seed=11, rate_limit=None)
    )
    tenant = await service.add_tenant(company)
    await tenant.elevo.create(OUTSIDER)  # a profile the sync never managed
    run = await tenant.full_sync()
    assert run["state"] == "done", run
    return tenant


def given_back(user: dict[str, Any]) -> dict[str, Any]:
    """The user as a release should leave it: without syncSource, and without `meta`, which
    every write changes."""
    expected = {key: value for key, value in user.items() if key != "meta"}
    extension = dict(expected.get(scim.ELEVO) or {})
    extension.pop("syncSource", None)
    if extension:
        expected[scim.ELEVO] = extension
    else:  # an extension left empty may be dropped, with its schema URN
        expected.pop(scim.ELEVO, None)
        expected["schemas"] = [s for s in expected["schemas"] if s != scim.ELEVO]
    return expected


async def users_by_id(tenant: Tenant) -> dict[str, dict[str, Any]]:
    users = await raw_users(tenant.service.http, tenant.config.elevo_scim_url, SCIM_TOKEN)
    return {user["id"]: user for user in users}


async def ask_release(tenant: Tenant) -> str:
    service = tenant.service
    response = await service.http.delete(
        f"{service.url}/tenants/{tenant.name}",
        params={"release": "true"},
        headers=service.admin_headers,
    )
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run"]
    return run_id


async def wait_gone(tenant: Tenant, within: float = 90.0) -> None:
    service = tenant.service

    async def gone() -> bool:
        response = await service.http.get(
            f"{service.url}/tenants/{tenant.name}", headers=service.admin_headers
        )
        return response.status_code == 404

    await eventually(gone, timeout=within, interval=0.2)


async def stop_workers(service: Service) -> None:
    """Cancel every worker at once, whatever job it runs: a killed worker process."""
    for task in service.worker_tasks:
        task.cancel()
    for task in service.worker_tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 10)
    for worker in service.workers:
        with contextlib.suppress(Exception):
            await close_worker(worker)
    service.worker_tasks.clear()
    service.workers.clear()


async def test_a_release_gives_every_managed_profile_back_and_nothing_else(synced: Tenant) -> None:
    before = await users_by_id(synced)
    managed = [u for u in before.values() if (u.get(scim.ELEVO) or {}).get("syncSource")]
    assert len(managed) > 0.8 * SIZE
    linked = await release.release_count(synced.service.resources, synced.name)
    assert linked == len(managed)  # what the console's "release N profiles?" shows

    await ask_release(synced)
    await wait_gone(synced)

    after = await users_by_id(synced)
    assert set(after) == set(before)  # nobody created, nobody deleted
    for profile_id, user in before.items():
        assert {k: v for k, v in after[profile_id].items() if k != "meta"} == given_back(user)
    # The configuration and every key of the tenant's state are gone.
    redis = synced.service.resources.redis
    assert [key async for key in redis.scan_iter(match=f"t:{synced.name}:*")] == []
    assert [key async for key in redis.scan_iter(match=f"tenant:{synced.name}:*")] == []


async def test_a_worker_killed_mid_release_leaves_it_to_the_next(
    synced: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = synced.service
    # Small sequential pages, for the kill to land in the middle of the sweep.
    monkeypatch.setattr(release, "RELEASE_PAGE_SIZE", 20)
    monkeypatch.setattr(release, "RELEASE_CONCURRENCY", 1)
    before = await users_by_id(synced)
    managed = [
        u["externalId"] for u in before.values() if (u.get(scim.ELEVO) or {}).get("syncSource")
    ]
    await stop_workers(service)
    run_id = await ask_release(synced)
    assert await ask_release(synced) == run_id  # asked again: the same release

    # Disconnecting: webhooks acknowledged and ignored, runs refused, the status says so.
    event = make_event(
        "employee.updated",
        {"id": "3", "type": "employee"},
        subdomain=synced.company.subdomain,
        occurred_at=datetime.now(UTC),
    )
    assert await synced.send([event]) == [202]
    sync = await service.http.post(
        f"{service.url}/sync/{synced.name}", json={"mode": "full"}, headers=service.admin_headers
    )
    assert sync.status_code == 409, sync.text
    status = (
        await service.http.get(f"{service.url}/sync/{synced.name}", headers=service.admin_headers)
    ).json()
    assert status["disconnect"] == {"state": "disconnecting", "run": run_id, "error": None}
    assert (status["runs"][0]["id"], status["runs"][0]["mode"]) == (run_id, "release")
    queued = await service.resources.redis.zrange("arq:queue", 0, -1)
    assert not [job for job in queued if job.startswith(b"sync:")]  # the webhook queued none

    await service.start_worker()

    async def some_released() -> bool:
        run = await service.resources.runs.report(synced.name, run_id)
        return run is not None and run.counts.get("release", 0) >= 30

    await eventually(some_released, timeout=60)
    await stop_workers(service)
    report = await service.resources.runs.report(synced.name, run_id)
    assert report is not None
    assert report.run.state.value == "running"
    assert report.counts["release"] < len(managed)  # killed in the middle
    # Each released employee's history says so, with the one attribute it changed.
    records = service.resources.records
    histories = [await records.history(synced.name, uid) for uid in managed]
    released = [h[0] for h in histories if h and h[0]["action"] == "release"]
    # The kill may land between one profile's history entry and its count in the run.
    assert report.counts["release"] <= len(released) <= report.counts["release"] + 1
    assert all(
        entry["diff"] == {scim.SYNC_SOURCE: {"old": "lucca", "new": None}}
        and entry["run"] == run_id
        for entry in released
    )
    # ARQ re-runs a killed job once its in-progress key expires (70 s): expire it now.
    async for key in service.resources.redis.scan_iter(match="arq:in-progress:*"):
        await service.resources.redis.delete(key)
    await service.start_worker()

    await wait_gone(synced)
    after = await users_by_id(synced)
    assert not [u for u in after.values() if (u.get(scim.ELEVO) or {}).get("syncSource")]
    assert any(u["userName"] == OUTSIDER["userName"] for u in after.values())

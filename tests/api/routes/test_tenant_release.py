"""DELETE /tenants/{tenant}?release=true: its answers (the release: tests/e2e/test_release.py)."""

from __future__ import annotations

import httpx

from app.service.jobs import Job
from app.service.resources import Resources
from app.store import keys
from tests.api.routes.test_tenants import AUTH, body, put
from tests.fakes import queued_job

pytest_plugins = ["tests.api.routes.test_tenants"]


async def test_release_answers_202_with_the_run_and_asking_again_names_the_same(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    await put(client, "acme", body())
    response = await client.delete("/tenants/acme", params={"release": "true"}, headers=AUTH)
    assert response.status_code == 202, response.text
    run_id = response.json()["run"]
    again = await client.delete("/tenants/acme", params={"release": "true"}, headers=AUTH)
    assert again.json() == {"run": run_id}
    # The tenant stays, disconnecting, while its first page waits for a worker.
    assert (await client.get("/tenants/acme", headers=AUTH)).status_code == 200
    function, args = await queued_job(resources, keys.release_job_id("acme", run_id, 1, 1))
    assert (function, args) == (Job.RELEASE_PAGE.value, ("acme", run_id, 1, 1))
    run = await resources.runs.get("acme", run_id)
    assert run is not None
    assert run.mode.value == "release"


async def test_a_plain_delete_stays_204_and_ends_a_release(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    await put(client, "acme", body())
    await client.delete("/tenants/acme", params={"release": "true"}, headers=AUTH)
    response = await client.delete("/tenants/acme", params={"release": "false"}, headers=AUTH)
    assert response.status_code == 204
    assert await resources.releases.get("acme") is None


async def test_release_of_no_tenant_is_404_and_a_bad_flag_400(client: httpx.AsyncClient) -> None:
    response = await client.delete("/tenants/nobody", params={"release": "true"}, headers=AUTH)
    assert (response.status_code, response.json()["error"]) == (404, "unknown_tenant")
    await put(client, "acme", body())
    response = await client.delete("/tenants/acme", params={"release": "yes"}, headers=AUTH)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_body")
    assert (await client.get("/tenants/acme", headers=AUTH)).status_code == 200

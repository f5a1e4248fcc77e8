"""Service problems the security work found, now fixed: these tests keep them fixed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis

from app.store import keys
from tests.conftest import make_settings
from tests.security.conftest import register_tenants
from tests.security.support import ADMIN, Served, serve


@pytest.fixture
async def lenient(redis: ArqRedis) -> AsyncIterator[Served]:
    """The app as a server runs it: an unhandled exception becomes a plain 500."""
    async with serve(make_settings(), raise_app_exceptions=False) as app:
        await register_tenants(app)
        yield app


async def test_a_full_run_asked_while_one_runs_answers_the_running_run(lenient: Served) -> None:
    first = await lenient.client.post("/sync/acme", json={"mode": "full"}, headers=ADMIN)
    assert first.status_code == 202
    # No worker here: the first run still holds the tenant's full-run lock.
    assert await lenient.resources.redis.exists(keys.active_full_run("acme"))
    second = await lenient.client.post("/sync/acme", json={"mode": "full"}, headers=ADMIN)
    assert second.status_code == 202, second.text
    assert second.json()["run"] == first.json()["run"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/sync/beta"),
        ("GET", "/sync/beta/runs/20260101T000000-abcdef"),
        ("GET", "/sync/beta/users/2"),
    ],
)
async def test_sync_routes_answer_a_json_error_for_an_unreadable_config(
    lenient: Served, method: str, path: str
) -> None:
    redis = lenient.resources.redis
    acme = await redis.get(keys.tenant_config("acme"))
    await redis.set(keys.tenant_config("beta"), acme or b"")
    response = await lenient.client.request(method, path, headers=ADMIN, json={})
    assert response.headers["content-type"] == "application/json", response.text
    assert response.json()["error"] == "tenant_unreadable"


async def test_the_status_of_a_tenant_with_an_unreadable_config_says_why(
    lenient: Served,
) -> None:
    redis = lenient.resources.redis
    acme = await redis.get(keys.tenant_config("acme"))
    await redis.set(keys.tenant_config("beta"), acme or b"")  # filed under another name
    response = await lenient.client.get("/sync/beta", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert "beta" in response.json()["config_error"]  # before any tick flagged it
    assert response.json()["tenant"] == "beta"
    healthy = await lenient.client.get("/sync/acme", headers=ADMIN)
    assert healthy.json()["config_error"] is None

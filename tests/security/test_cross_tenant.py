"""Tenant isolation: nothing of tenant A opens anything of tenant B."""

from __future__ import annotations

import orjson
import pytest

from app.store import keys
from tests.security.support import (
    ACME_API_KEY,
    ACME_ELEVO_TOKEN,
    ACME_WEBHOOK,
    ACME_WEBHOOK_OLD,
    ADMIN,
    BETA_WEBHOOK,
    Served,
    leaked,
    signed_headers,
)

ACME_CREDENTIALS = (ACME_API_KEY, ACME_WEBHOOK, ACME_WEBHOOK_OLD, ACME_ELEVO_TOKEN)
BETA_READS = (
    "/tenants/beta",
    "/tenants",
    "/sync/beta",
    "/sync/beta/runs/20260101T000000-abcdef",
    "/sync/beta/users/2",
)


def presented(credential: str) -> list[dict[str, str]]:
    """Every way a caller could present a credential."""
    return [
        {"Authorization": f"Bearer {credential}"},
        {"Authorization": f"Lucca application={credential}"},
        {"Authorization": credential},
        {"X-Api-Key": credential},
        {"Lucca-Signature": credential},
        {"Cookie": f"token={credential}"},
    ]


@pytest.mark.parametrize(
    "credential", ACME_CREDENTIALS, ids=["api_key", "webhook", "old_webhook", "elevo_token"]
)
async def test_no_credential_of_acme_reads_beta(served: Served, credential: str) -> None:
    for path in BETA_READS:
        for headers in presented(credential):
            response = await served.client.get(path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.json()["error"] == "unauthorized"
            assert leaked(response.content) == []
        response = await served.client.get(path, params={"access_token": credential})
        assert response.status_code == 401


@pytest.mark.parametrize(
    "credential", ACME_CREDENTIALS, ids=["api_key", "webhook", "old_webhook", "elevo_token"]
)
async def test_no_credential_of_acme_changes_beta(served: Served, credential: str) -> None:
    auth = {"Authorization": f"Bearer {credential}"}
    takeover = {"lucca": {"subdomain": "beta"}, "elevo": {"scim_url": "https://evil.example/scim"}}
    assert (
        await served.client.put("/tenants/beta", json=takeover, headers=auth)
    ).status_code == 401
    assert (await served.client.delete("/tenants/beta", headers=auth)).status_code == 401
    assert (await served.client.post("/sync/beta", json={}, headers=auth)).status_code == 401
    shown = (await served.client.get("/tenants/beta", headers=ADMIN)).json()
    assert shown["elevo"]["scim_url"] == "https://elevo.example/beta/scim/v2"
    assert await served.resources.redis.zcard("arq:queue") == 0


@pytest.mark.parametrize("secret", [ACME_WEBHOOK, ACME_WEBHOOK_OLD])
async def test_acmes_webhook_secret_on_betas_url_is_401(served: Served, secret: str) -> None:
    body = orjson.dumps({"id": "x1", "topic": "employee.updated", "data": {"id": "2"}})
    response = await served.client.post(
        "/webhooks/lucca/beta", content=body, headers=signed_headers(secret, body)
    )
    assert (response.status_code, response.json()["error"]) == (401, "bad_signature")
    assert await served.resources.redis.zcard("arq:queue") == 0
    # beta's own secret works, and acme's event id does not shadow beta's.
    response = await served.client.post(
        "/webhooks/lucca/beta", content=body, headers=signed_headers(BETA_WEBHOOK, body)
    )
    assert response.json()["status"] == "users"


async def test_a_run_of_acme_is_not_found_under_beta(served: Served) -> None:
    run = (await served.client.post("/sync/acme", json={"users": [2]}, headers=ADMIN)).json()["run"]
    assert (await served.client.get(f"/sync/acme/runs/{run}", headers=ADMIN)).status_code == 200
    response = await served.client.get(f"/sync/beta/runs/{run}", headers=ADMIN)
    assert (response.status_code, response.json()["error"]) == (404, "unknown_run")
    status = (await served.client.get("/sync/beta", headers=ADMIN)).json()
    assert status["runs"] == []


async def test_the_history_of_acme_is_not_shown_under_beta(served: Served) -> None:
    entry = {"user": "2", "action": "suspend", "reason": "left acme", "diff": {}}
    await served.resources.redis.lpush(keys.old_history("acme", "2"), orjson.dumps(entry))
    acme = (await served.client.get("/sync/acme/users/2", headers=ADMIN)).json()
    beta = (await served.client.get("/sync/beta/users/2", headers=ADMIN)).json()
    assert [e["reason"] for e in acme["history"]] == ["left acme"]
    assert beta["history"] == []


async def test_a_path_cannot_climb_into_another_tenant(served: Served) -> None:
    for path in (
        "/sync/beta/users/..%2F..%2Facme%2Fusers%2F2",
        "/sync/beta%2F..%2Facme",
        "/tenants/beta%2F..%2Facme",
        "/sync/beta/runs/..%2F..%2Facme",
    ):
        response = await served.client.get(path, headers=ADMIN)
        assert response.status_code in {400, 404}, path
        assert "acme" not in response.text.replace(path, ""), path

"""Issue 12, point 2: least privilege. Tenant tokens issued by the admin API (stored hashed,
shown once, listed, revoked, expiring), scope `sync` or `operator`, never reaching another
tenant, the tenant list or /metrics; every operator action names the token that did it."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from app.service.access import authenticate, still_valid
from app.store.run_model import RunMode, RunState, Trigger, TriggerKind, draft_run
from tests.security.support import ACME_BODY, ADMIN, Served, leaked
from tests.security.test_no_leaks import redis_contents

HELD = "20260101T000000-abcdef"


async def issue(served: Served, scope: str, tenant: str = "acme", **extra: Any) -> dict[str, Any]:
    response = await served.client.post(
        f"/tenants/{tenant}/tokens",
        json={"scope": scope, "name": f"{scope}-1", **extra},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


def bearer(issued: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {issued['token']}"}


async def call(
    served: Served, method: str, path: str, issued: dict[str, Any], body: object = None
) -> httpx.Response:
    return await served.client.request(method, path, headers=bearer(issued), json=body)


async def held_run(served: Served) -> str:
    """A held full run of acme, as a reconciliation leaves one."""
    runs = served.resources.runs
    new = draft_run(mode=RunMode.FULL, trigger=Trigger(TriggerKind.API))
    run_id = await runs.create("acme", new)
    await runs.set_state("acme", run_id, RunState.HELD)
    return run_id


async def test_a_token_is_shown_once_and_stored_only_as_its_digest(served: Served) -> None:
    issued = await issue(served, "sync", expires_in_days=30)
    token = issued["token"]
    assert token.startswith("les_acme_")
    assert len(token) > 50
    assert issued["scope"] == "sync"
    assert issued["name"] == "sync-1"
    listed = await served.client.get("/tenants/acme/tokens", headers=ADMIN)
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["tokens"]] == [issued["id"]]
    assert leaked(listed.content, [token]) == []
    assert "token" not in listed.json()["tokens"][0]
    everything = b"".join(piece for _, piece in await redis_contents(served.resources.redis))
    assert token.encode() not in everything
    assert hashlib.sha256(token.encode()).hexdigest().encode() in everything


SYNC_REFUSED = [
    ("GET", "/sync/acme", None, "read_status"),
    ("GET", "/sync/acme/users/2", None, "read_status"),
    ("GET", "/tenants/acme", None, "read_status"),
    ("GET", "/tenants/acme/audit", None, "read_status"),
    ("POST", "/sync/acme", {"dismiss": HELD}, "resolve_held"),
    ("POST", "/sync/acme", {"mode": "full", "confirm_suspensions": HELD}, "resolve_held"),
    ("POST", "/sync/acme", {"confirm_suspensions": True}, "resolve_held"),
    ("POST", "/sync/acme", {"accept_skip_field_loss": True}, "resolve_held"),
    ("DELETE", "/tenants/acme", None, "delete_tenant"),
    ("GET", "/tenants/acme/tokens", None, "manage_tokens"),
    ("POST", "/tenants/acme/tokens", {"scope": "sync", "name": "x"}, "manage_tokens"),
    ("GET", "/tenants", None, "list_tenants"),
    ("GET", "/metrics", None, "metrics"),
]
OPERATOR_REFUSED = [
    ("DELETE", "/tenants/acme", None, "delete_tenant"),
    ("GET", "/tenants/acme/tokens", None, "manage_tokens"),
    ("POST", "/tenants/acme/tokens", {"scope": "operator", "name": "x"}, "manage_tokens"),
    ("DELETE", "/tenants/acme/tokens/0123456789ab", None, "manage_tokens"),
    ("GET", "/tenants", None, "list_tenants"),
    ("GET", "/metrics", None, "metrics"),
]


@pytest.mark.parametrize(
    ("scope", "method", "path", "body", "action"),
    [("sync", *case) for case in SYNC_REFUSED] + [("operator", *case) for case in OPERATOR_REFUSED],
)
async def test_a_scope_is_refused_what_it_lacks_naming_the_action(
    served: Served, scope: str, method: str, path: str, body: object, action: str
) -> None:
    issued = await issue(served, scope)
    response = await call(served, method, path, issued, body)
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"
    assert action in response.json()["detail"]
    assert await served.resources.redis.zcard("arq:queue") == 0
    assert await served.resources.tenants.get("acme") is not None


async def test_a_sync_token_starts_runs_and_reads_them(served: Served) -> None:
    issued = await issue(served, "sync")
    started = await call(served, "POST", "/sync/acme", issued, {"mode": "changes"})
    assert started.status_code == 202
    run = await call(served, "GET", f"/sync/acme/runs/{started.json()['run']}", issued)
    assert run.status_code == 200
    assert run.json()["mode"] == "changes"


async def test_an_operator_reads_resolves_and_configures_its_tenant(served: Served) -> None:
    issued = await issue(served, "operator")
    for path in ("/sync/acme", "/sync/acme/users/2", "/tenants/acme", "/tenants/acme/audit"):
        response = await call(served, "GET", path, issued)
        assert response.status_code == 200, path
        assert leaked(response.content) == []
    held = await held_run(served)
    dismissed = await call(served, "POST", "/sync/acme", issued, {"dismiss": held})
    assert dismissed.status_code == 202, dismissed.text
    run = (await call(served, "GET", f"/sync/acme/runs/{held}", issued)).json()
    assert (run["resolution"], run["resolved_by"]) == ("dismissed", issued["id"])
    shown = (await call(served, "GET", "/tenants/acme", issued)).json()
    shown["timezone"] = "Asia/Tokyo"
    shown["guard"]["max_suspend_count"] = 12
    assert (await call(served, "PUT", "/tenants/acme", issued, shown)).status_code == 200
    entries = (await call(served, "GET", "/tenants/acme/audit", issued)).json()["entries"]
    assert entries[0] == {
        "at": entries[0]["at"],
        "by": issued["id"],
        "action": "configure",
        "changed": ["guard.max_suspend_count", "timezone"],
    }
    assert entries[1]["action"] == "dismiss"
    assert (entries[1]["by"], entries[1]["run"]) == (issued["id"], held)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("lucca", "api_key", "acme-lucca-key-5f1e0c9a7b"),  # even the stored value: no oracle
        ("lucca", "api_key", "another-key"),
        ("lucca", "webhook_secret", None),
        ("lucca", "webhook_secret", "a-new-webhook-secret"),
        ("elevo", "token", "another-token"),
        ("lucca", "subdomain", "acme2"),
        ("lucca", "domain", "ilucca.ch"),
        ("elevo", "scim_url", "https://listener.example/scim/v2"),
    ],
)
async def test_an_operator_changes_no_secret_nor_destination(
    served: Served, section: str, key: str, value: object
) -> None:
    issued = await issue(served, "operator")
    before = (await served.client.get("/tenants/acme", headers=ADMIN)).json()
    body = (await call(served, "GET", "/tenants/acme", issued)).json()
    body[section][key] = value
    if key in ("subdomain", "domain"):
        body["lucca"]["api_key"] = "a-key-for-the-new-host"
    if key == "scim_url":
        body["elevo"]["token"] = "a-token-for-the-new-url"
    response = await call(served, "PUT", "/tenants/acme", issued, body)
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"
    assert f"{section}." in response.json()["detail"]
    assert (await served.client.get("/tenants/acme", headers=ADMIN)).json() == before
    config = await served.resources.tenants.get("acme")
    assert config is not None
    assert config.lucca_api_key.reveal() == "acme-lucca-key-5f1e0c9a7b"


BETA_ROUTES = [
    ("GET", "/sync/beta", None),
    ("POST", "/sync/beta", {}),
    ("GET", "/sync/beta/runs/20260101T000000-abcdef", None),
    ("GET", "/sync/beta/users/2", None),
    ("GET", "/tenants/beta", None),
    ("PUT", "/tenants/beta", {"timezone": "UTC"}),
    ("DELETE", "/tenants/beta", None),
    ("GET", "/tenants/beta/audit", None),
    ("GET", "/tenants/beta/tokens", None),
    ("GET", "/sync/ghost", None),  # absent: the same answer
]


@pytest.mark.parametrize("scope", ["sync", "operator"])
async def test_a_tenant_token_never_reaches_another_tenant(served: Served, scope: str) -> None:
    issued = await issue(served, scope)
    for method, path, body in BETA_ROUTES:
        response = await call(served, method, path, issued, body)
        # 404 as for a tenant that does not exist: the token learns no tenant's existence.
        assert (response.status_code, response.json()["error"]) == (404, "unknown_tenant"), path
    assert await served.resources.redis.zcard("arq:queue") == 0
    assert await served.resources.tenants.get("beta") is not None


async def test_a_token_moved_to_another_tenant_stands_for_nobody(served: Served) -> None:
    issued = await issue(served, "operator")
    forged = issued["token"].replace("les_acme_", "les_beta_", 1)
    response = await served.client.get("/sync/beta", headers={"Authorization": f"Bearer {forged}"})
    assert (response.status_code, response.json()["error"]) == (401, "unauthorized")
    tampered = issued["token"][:-2] + ("AA" if not issued["token"].endswith("AA") else "BB")
    response = await served.client.get(
        "/sync/acme", headers={"Authorization": f"Bearer {tampered}"}
    )
    assert response.status_code == 401


async def test_a_revoked_token_stands_for_nobody_from_the_next_request(served: Served) -> None:
    issued = await issue(served, "operator")
    principal = await authenticate(served.resources, issued["token"])
    assert principal is not None
    assert principal.name == issued["id"]
    assert await still_valid(served.resources, principal)
    revoked = await served.client.delete(f"/tenants/acme/tokens/{issued['id']}", headers=ADMIN)
    assert revoked.status_code == 204
    assert (await call(served, "GET", "/sync/acme", issued)).status_code == 401
    assert not await still_valid(served.resources, principal)
    listed = (await served.client.get("/tenants/acme/tokens", headers=ADMIN)).json()
    assert listed["tokens"] == []
    again = await served.client.delete(f"/tenants/acme/tokens/{issued['id']}", headers=ADMIN)
    assert (again.status_code, again.json()["error"]) == (404, "unknown_token")
    audit = (await served.client.get("/tenants/acme/audit", headers=ADMIN)).json()["entries"]
    assert [(e["action"], e["by"]) for e in audit[:2]] == [
        ("revoke_token", "admin"),
        ("issue_token", "admin"),
    ]


async def test_a_deleted_tenant_takes_its_tokens_along(served: Served) -> None:
    issued = await issue(served, "operator")
    assert (await served.client.delete("/tenants/acme", headers=ADMIN)).status_code == 204
    assert (await served.put_tenant("acme", ACME_BODY)).status_code == 201
    assert (await call(served, "GET", "/sync/acme", issued)).status_code == 401
    audit = (await served.client.get("/tenants/acme/audit", headers=ADMIN)).json()["entries"]
    assert [(e["action"], e["by"]) for e in audit[:2]] == [("create", "admin"), ("delete", "admin")]


@pytest.mark.parametrize(
    "body",
    [
        {"scope": "admin", "name": "x"},
        {"scope": "sync", "name": ""},
        {"scope": "sync", "name": "x\n"},
        {"scope": "sync", "name": "x", "expires_in_days": 0},
        {"scope": "sync", "name": "x", "expires_in_days": 366},
        {"scope": "sync"},
        {"scope": "sync", "name": "x", "token": "les_acme_chosen"},
    ],
)
async def test_a_bad_token_request_is_a_400(served: Served, body: dict[str, Any]) -> None:
    response = await served.client.post("/tenants/acme/tokens", json=body, headers=ADMIN)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_body")
    assert (await served.client.get("/tenants/acme/tokens", headers=ADMIN)).json()["tokens"] == []


async def test_tokens_of_an_unknown_tenant_are_a_404(served: Served) -> None:
    response = await served.client.post(
        "/tenants/ghost/tokens", json={"scope": "sync", "name": "x"}, headers=ADMIN
    )
    assert (response.status_code, response.json()["error"]) == (404, "unknown_tenant")

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from arq.connections import ArqRedis
from starlette.applications import Starlette

from app.api.errors import EXCEPTION_HANDLERS
from app.api.routes import tenants
from app.core.tenant import default_nightly_at
from app.secret import Secret
from app.service import waiting
from app.service.resources import Resources
from app.settings import Settings
from app.store import keys
from tests.asgi import asgi_client
from tests.conftest import TEST_ADMIN_TOKEN, make_settings

API_KEY = "lucca-api-key-0a1b2c3d"
ELEVO_TOKEN = "elevo-token-4e5f6a7b"
WEBHOOK = "webhook-secret-8c9d0e1f"
SECRETS = (API_KEY, ELEVO_TOKEN, WEBHOOK)
AUTH = {"Authorization": f"Bearer {TEST_ADMIN_TOKEN}"}


def body(**overrides: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "lucca": {
            "subdomain": "acme",
            "domain": "ilucca.net",
            "api_key": API_KEY,
            "webhook_secret": WEBHOOK,
        },
        "elevo": {"scim_url": "http://127.0.0.1:8090/acme/v2", "token": ELEVO_TOKEN},
        "skip_field": "e_skip_elevo_sync",
        "custom_fields": {"cost_center": "extendedData.e_cost_center", "site": "legalEntity.name"},
        "timezone": "Europe/Paris",
    }
    result.update(overrides)
    return result


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Resources]]:
    """The tenants routes on a bare app whose lifespan holds real Resources."""
    resources = await Resources.create(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Resources]]:
        yield {"resources": resources}

    app = Starlette(routes=tenants.routes, lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS)

    try:
        async with asgi_client(app) as client:
            yield client, resources
    finally:
        await resources.aclose()


@pytest.fixture
async def served(redis: ArqRedis) -> AsyncIterator[tuple[httpx.AsyncClient, Resources]]:
    async with serve(make_settings()) as pair:
        yield pair


@pytest.fixture
def client(served: tuple[httpx.AsyncClient, Resources]) -> httpx.AsyncClient:
    return served[0]


@pytest.fixture
def resources(served: tuple[httpx.AsyncClient, Resources]) -> Resources:
    return served[1]


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


async def put(client: httpx.AsyncClient, tenant: str, value: object) -> httpx.Response:
    return await client.put(f"/tenants/{tenant}", content=orjson.dumps(value), headers=AUTH)


# -- PUT --------------------------------------------------------------------------------------


async def test_put_creates_then_replaces(client: httpx.AsyncClient) -> None:
    created = await put(client, "acme", body())
    assert created.status_code == 201
    assert created.json() == {
        "lucca": {
            "subdomain": "acme",
            "domain": "ilucca.net",
            "api_key": "***",
            "webhook_secret": "***",
        },
        "elevo": {"scim_url": "http://127.0.0.1:8090/acme/v2", "token": "***"},
        "skip_field": "e_skip_elevo_sync",
        "custom_fields": {"cost_center": "extendedData.e_cost_center", "site": "legalEntity.name"},
        "timezone": "Europe/Paris",
        "nightly_at": default_nightly_at("acme"),
        "guard": {"max_suspend_ratio": 0.1, "max_suspend_count": 5},
        "lucca_requests_per_minute": 40,
        "poll_interval_seconds": None,
        "alerts_url": None,
        "alerts_secret": None,
        "alerts_failed_runs": 3,
    }
    assert_no_secret(created.text)
    replaced = await put(client, "acme", body(timezone="UTC"))
    assert replaced.status_code == 200
    assert replaced.json()["timezone"] == "UTC"


async def test_put_stores_the_secrets(client: httpx.AsyncClient, resources: Resources) -> None:
    await put(client, "acme", body())
    config = await resources.tenants.get("acme")
    assert config is not None
    assert config.lucca_api_key == Secret(API_KEY)
    assert config.elevo_token == Secret(ELEVO_TOKEN)
    assert config.webhook_secrets == (Secret(WEBHOOK),)


async def test_omitted_secrets_keep_their_stored_values(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    await put(client, "acme", body())
    partial = body(timezone="Asia/Tokyo")
    del partial["lucca"]["api_key"]
    del partial["lucca"]["webhook_secret"]
    partial["elevo"] = {"scim_url": body()["elevo"]["scim_url"]}
    response = await put(client, "acme", partial)
    assert response.status_code == 200
    config = await resources.tenants.get("acme")
    assert config is not None
    assert config.timezone == "Asia/Tokyo"
    assert config.lucca_api_key == Secret(API_KEY)
    assert config.elevo_token == Secret(ELEVO_TOKEN)
    assert config.webhook_secrets == (Secret(WEBHOOK),)


async def test_a_get_body_put_back_changes_nothing(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    await put(client, "acme", body(lucca={**body()["lucca"], "webhook_secret": [WEBHOOK, "old"]}))
    before = await resources.tenants.get("acme")
    shown = (await client.get("/tenants/acme", headers=AUTH)).json()
    assert shown["lucca"]["webhook_secret"] == ["***", "***"]
    assert (await put(client, "acme", shown)).status_code == 200
    assert await resources.tenants.get("acme") == before


async def test_new_tenant_without_secrets_is_a_400(client: httpx.AsyncClient) -> None:
    partial = body()
    del partial["elevo"]["token"]
    response = await put(client, "acme", partial)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_body", "detail": "$.elevo.token is required"}


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"{not json", "bad_json"),
        (b"", "bad_json"),
        (b"\xff\xfe", "bad_json"),
        (b'{"a": NaN}', "bad_json"),
        (b"[]", "invalid_body"),
        (b"null", "invalid_body"),
    ],
)
async def test_put_bad_bodies(client: httpx.AsyncClient, content: bytes, error: str) -> None:
    response = await client.put("/tenants/acme", content=content, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lucca": {"subdomain": "evil.com/x", "api_key": API_KEY}}, "lucca.subdomain"),
        ({"elevo": {"scim_url": "ftp://x/y", "token": ELEVO_TOKEN}}, "elevo.scim_url"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_put_invalid_config_names_the_field(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    response = await put(client, "acme", body(**change))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_body"
    assert field in response.json()["detail"]
    assert_no_secret(response.text)


@pytest.mark.parametrize(
    ("section", "field", "bad"),
    [
        ("lucca", "api_key", f" {API_KEY}"),
        ("lucca", "api_key", f"{API_KEY}\u00e9"),
        ("elevo", "token", f"{ELEVO_TOKEN} "),
        ("elevo", "token", f"{ELEVO_TOKEN}\x7f"),
    ],
)
async def test_a_secret_no_http_header_can_carry_is_a_400_naming_it(
    client: httpx.AsyncClient, section: str, field: str, bad: str
) -> None:
    sent = body()
    sent[section][field] = bad
    response = await put(client, "acme", sent)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_body"
    detail = response.json()["detail"]  # "`token` ... - at `$.elevo`", or "at `$.elevo.token`"
    assert field in detail
    assert f"$.{section}" in detail
    assert_no_secret(response.text)


async def test_a_rejected_secret_is_not_echoed(client: httpx.AsyncClient) -> None:
    leaky = body()
    leaky["lucca"]["api_key"] = f"{API_KEY}\n"
    response = await put(client, "acme", leaky)
    assert response.status_code == 400
    assert_no_secret(response.text)


async def test_http_scim_url_is_refused_unless_allowed(redis: ArqRedis) -> None:
    async with serve(make_settings(ALLOW_HTTP_ELEVO="false")) as (client, _):
        response = await put(client, "acme", body())
        assert response.status_code == 400
        assert "elevo.scim_url must be an absolute https URL" in response.json()["detail"]
        https = body(elevo={"scim_url": "https://scim.elevo.example/v2", "token": ELEVO_TOKEN})
        assert (await put(client, "acme", https)).status_code == 201


async def test_oversized_body_is_refused(client: httpx.AsyncClient) -> None:
    huge = body(custom_fields={f"f{i}": "a.b" for i in range(10_000)})
    response = await put(client, "acme", huge)
    assert response.status_code == 413


async def test_put_makes_a_cached_absence_visible(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    assert await resources.contexts.get("acme") is None
    await put(client, "acme", body())
    assert await resources.contexts.get("acme") is not None
    await client.delete("/tenants/acme", headers=AUTH)
    assert await resources.contexts.get("acme") is None


async def test_no_secret_in_logs(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await put(client, "acme", body())
    await put(client, "acme", body(timezone="UTC"))
    await client.get("/tenants/acme", headers=AUTH)
    await client.delete("/tenants/acme", headers=AUTH)
    assert "tenant acme created" in caplog.text
    assert_no_secret(caplog.text)


# -- GET, DELETE, list ------------------------------------------------------------------------


async def test_get(client: httpx.AsyncClient) -> None:
    put_response = await put(client, "acme", body())
    response = await client.get("/tenants/acme", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == put_response.json()
    assert_no_secret(response.text)


async def test_get_unknown_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/tenants/nobody", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_tenant"


async def test_delete(client: httpx.AsyncClient) -> None:
    await put(client, "acme", body())
    response = await client.delete("/tenants/acme", headers=AUTH)
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get("/tenants/acme", headers=AUTH)).status_code == 404
    assert (await client.delete("/tenants/acme", headers=AUTH)).status_code == 404


async def test_list(client: httpx.AsyncClient) -> None:
    assert (await client.get("/tenants", headers=AUTH)).json() == {"tenants": []}
    for tenant in ("globex", "acme", "initech"):
        await put(client, tenant, body())
    await client.delete("/tenants/globex", headers=AUTH)
    response = await client.get("/tenants", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"tenants": ["acme", "initech"]}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("tenant", ["Acme", "acme.corp", "-acme", "a" * 64, "acme%0A", "ac_me"])
async def test_invalid_tenant_names_are_a_404(
    client: httpx.AsyncClient, method: str, tenant: str
) -> None:
    response = await client.request(
        method, f"/tenants/{tenant}", content=orjson.dumps(body()), headers=AUTH
    )
    # A name that cannot be stored names no tenant: the same answer as an absent one.
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_tenant"


async def test_unreadable_config_is_a_500_until_replaced(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    await put(client, "acme", body())
    stored = orjson.loads(await resources.redis.get(keys.tenant_config("acme")))
    stored["elevo"]["token"] = stored["lucca"]["api_key"]
    await resources.redis.set(keys.tenant_config("acme"), orjson.dumps(stored))
    response = await client.get("/tenants/acme", headers=AUTH)
    assert response.status_code == 500
    assert response.json()["error"] == "tenant_unreadable"
    assert "'acme'" in response.json()["detail"]
    assert_no_secret(response.text)
    partial = body()
    del partial["elevo"]["token"]
    assert (await put(client, "acme", partial)).status_code == 400
    assert (await put(client, "acme", body())).status_code == 200
    assert (await client.get("/tenants/acme", headers=AUTH)).status_code == 200


# -- authentication ---------------------------------------------------------------------------

ROUTES = [("PUT", "/tenants/acme"), ("GET", "/tenants/acme"), ("DELETE", "/tenants/acme")]
ROUTES += [("GET", "/tenants"), ("GET", "/tenants/Not.Valid")]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TEST_ADMIN_TOKEN}"},
        {"Authorization": f"Bearer {TEST_ADMIN_TOKEN}x"},
        {"Authorization": "Bearer"},
        {"Authorization": TEST_ADMIN_TOKEN},
        {"X-Admin-Token": TEST_ADMIN_TOKEN},
    ],
)
async def test_without_the_admin_token_is_a_401(
    client: httpx.AsyncClient, resources: Resources, method: str, path: str, headers: dict[str, str]
) -> None:
    await put(client, "acme", body())
    response = await client.request(method, path, content=orjson.dumps(body()), headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"] == "unauthorized"
    assert TEST_ADMIN_TOKEN not in response.text
    assert await resources.tenants.list() == ["acme"]


async def test_the_scheme_is_case_insensitive(client: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"bearer {TEST_ADMIN_TOKEN}"}
    assert (await client.get("/tenants", headers=headers)).status_code == 200


# -- pause and resume (issue 10; the use cases: tests/service/test_waiting.py) ----------------


async def test_pause_then_resume_answer_the_pause_and_its_lifting(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    assert (await put(client, "acme", body())).status_code == 201
    paused = await client.post("/tenants/acme/pause", json={"reason": "audit"}, headers=AUTH)
    assert paused.status_code == 200
    since = paused.json()["since"]
    assert paused.json() == {"tenant": "acme", "paused": True, "since": since, "by": "admin"}
    pause = await waiting.paused(resources, "acme")
    assert pause is not None
    assert (pause.by, pause.reason) == ("admin", "audit")
    resumed = await client.post("/tenants/acme/resume", headers=AUTH)
    assert resumed.status_code == 200
    assert resumed.json() == {"tenant": "acme", "paused": False, "run": None, "runs": []}
    assert await waiting.paused(resources, "acme") is None


async def test_pause_needs_the_admin_a_known_tenant_and_a_valid_body(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/tenants/acme/pause")).status_code == 401
    unknown = await client.post("/tenants/ghost/pause", headers=AUTH)
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_tenant")
    assert (await put(client, "acme", body())).status_code == 201
    extra = await client.post("/tenants/acme/pause", json={"why": "x"}, headers=AUTH)
    assert (extra.status_code, extra.json()["error"]) == (400, "invalid_body")
    long = await client.post("/tenants/acme/pause", json={"reason": "x" * 501}, headers=AUTH)
    assert long.status_code == 400
    not_json = await client.post("/tenants/acme/pause", content=b"{", headers=AUTH)
    assert (not_json.status_code, not_json.json()["error"]) == (400, "bad_json")

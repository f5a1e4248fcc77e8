"""Console sessions and guards over ASGI (no browser): the cookie, its expiry and signature,
CSRF, a revoked token, tenant scopes, and the console off without SESSION_KEY."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from arq.connections import ArqRedis

from app.main import create_app
from app.service.access import Scope
from app.service.resources import Resources
from app.service.tokens import IssuedToken, issue_token, revoke_token
from app.store import keys
from tests.asgi import asgi_client
from tests.conftest import TEST_ADMIN_TOKEN, make_settings
from tests.console.conftest import SESSION_KEY
from tests.factories import make_tenant_config


async def _client(**env: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(SESSION_KEY=SESSION_KEY, **env))
    async with asgi_client(app) as client:
        yield client


@pytest.fixture
async def client(redis: ArqRedis) -> AsyncIterator[httpx.AsyncClient]:
    async for made in _client():
        yield made


async def _signed_in(client: httpx.AsyncClient, token: str = TEST_ADMIN_TOKEN) -> str:
    answer = await client.post("/console/sign-in", data={"token": token})
    assert answer.status_code == 303, answer.text
    page = await client.get("/console/")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


async def test_the_console_is_off_without_a_session_key(redis: ArqRedis) -> None:
    async with asgi_client(create_app(make_settings())) as client:
        assert (await client.get("/console/")).status_code == 404
        answer = await client.post("/console/sign-in", data={"token": TEST_ADMIN_TOKEN})
        assert answer.status_code == 404


async def test_the_cookie_is_httponly_strict_and_names_only_a_signed_id(
    client: httpx.AsyncClient, redis: ArqRedis
) -> None:
    answer = await client.post("/console/sign-in", data={"token": TEST_ADMIN_TOKEN})
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie
    assert TEST_ADMIN_TOKEN not in cookie
    session_id = client.cookies["console_session"].partition(".")[0]
    assert 0 < await redis.ttl(keys.console_session(session_id)) <= 8 * 3600


async def test_an_https_public_url_makes_the_cookie_secure(redis: ArqRedis) -> None:
    async for client in _client(PUBLIC_URL="https://sync.example.com"):
        answer = await client.post("/console/sign-in", data={"token": TEST_ADMIN_TOKEN})
        assert "Secure" in answer.headers["set-cookie"]


async def test_a_wrong_token_or_a_forged_cookie_gets_no_page(client: httpx.AsyncClient) -> None:
    refused = await client.post("/console/sign-in", data={"token": "nope-" * 5})
    assert refused.status_code == 401
    assert "console_session" not in client.cookies
    await _signed_in(client)
    session_id = client.cookies["console_session"].partition(".")[0]
    client.cookies.set("console_session", f"{session_id}.{'0' * 64}", path="/console")
    answer = await client.get("/console/")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in"


async def test_every_post_needs_the_session_csrf_token(
    client: httpx.AsyncClient, redis: ArqRedis
) -> None:
    config = make_tenant_config()
    csrf = await _signed_in(client)
    async with _resources() as res:
        await res.tenants.put(config)
    url = f"/console/t/{config.tenant}/runs"
    assert (await client.post(url, data={"kind": "dry"})).status_code == 403
    assert (await client.post(url, data={"kind": "dry", "csrf": "x" + csrf})).status_code == 403
    assert await redis.zcard(keys.runs(config.tenant)) == 0
    started = await client.post(url, data={"kind": "dry", "csrf": csrf})
    assert started.status_code == 303
    assert await redis.zcard(keys.runs(config.tenant)) == 1


async def test_sign_out_ends_the_session(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    csrf = await _signed_in(client)
    session_id = client.cookies["console_session"].partition(".")[0]
    assert (await client.post("/console/sign-out", data={"csrf": csrf})).status_code == 303
    assert not await redis.exists(keys.console_session(session_id))


async def _issued(res: Resources, tenant: str, scope: Scope) -> IssuedToken:
    return await issue_token(
        res,
        tenant,
        scope=scope,
        name=f"{scope} of {tenant}",
        lifetime=timedelta(days=1),
        by="admin",
    )


async def test_a_session_dies_with_its_token(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    async with _resources() as res:
        await res.tenants.put(make_tenant_config(tenant="ours"))
        issued = await _issued(res, "ours", Scope.OPERATOR)
        await _signed_in(client, issued.token)
        session_id = client.cookies["console_session"].partition(".")[0]
        assert (await client.get("/console/t/ours")).status_code == 200
        assert await revoke_token(res, "ours", issued.stored.id, by="admin")
    answer = await client.get("/console/t/ours")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in"
    assert not await redis.exists(keys.console_session(session_id))


async def test_a_tenant_token_sees_its_tenant_only(
    client: httpx.AsyncClient, redis: ArqRedis
) -> None:
    async with _resources() as res:
        await res.tenants.put(make_tenant_config(tenant="ours"))
        await res.tenants.put(make_tenant_config(tenant="theirs"))
        operator = await _issued(res, "ours", Scope.OPERATOR)
        sync = await _issued(res, "ours", Scope.SYNC)
    await _signed_in(client, operator.token)
    overview = await client.get("/console/")
    assert "/console/t/ours" in overview.text
    assert "theirs" not in overview.text
    assert (await client.get("/console/t/ours")).status_code == 200
    assert (await client.get("/console/t/theirs")).status_code == 404

    client.cookies.clear()
    # A sync token is Elevo's backend's, not an operator's: it opens no console.
    refused = await client.post("/console/sign-in", data={"token": sync.token})
    assert refused.status_code == 401


@asynccontextmanager
async def _resources() -> AsyncIterator[Resources]:
    res = await Resources.create(make_settings())
    try:
        yield res
    finally:
        await res.aclose()


async def test_a_post_from_another_site_is_refused(client: httpx.AsyncClient) -> None:
    evil = {"Origin": "https://evil.example"}
    answer = await client.post("/console/sign-in", data={"token": TEST_ADMIN_TOKEN}, headers=evil)
    assert answer.status_code == 403
    assert "console_session" not in client.cookies
    same = {"Origin": "http://sync"}
    answer = await client.post("/console/sign-in", data={"token": TEST_ADMIN_TOKEN}, headers=same)
    assert answer.status_code == 303

"""The client of Lucca's webhook API (app/clients/lucca_api.py) against the simulator, and its
token cache and errors over MockTransport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.clients.errors import LuccaAuthError, LuccaRejected, LuccaUnavailable
from app.clients.lucca_api import LuccaApiClient, TokenCache
from app.core.tenant import LuccaOAuth
from app.secret import Secret
from simulators.lucca import Company, ManualClock, Registry, create_lucca_app
from tests.conftest import Recorder

CLIENT_SECRET = "client-secret-5a4b3c"
OAUTH = LuccaOAuth("sync-client", Secret(CLIENT_SECRET))
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def registry() -> Registry:
    clock = ManualClock(START)
    registry = Registry(rate_limit=None, clock=clock)
    registry.add(Company("tiny", "tiny-key", clock=clock))
    registry.hub.add_client("tiny", "sync-client", CLIENT_SECRET)

    async def activate(url: str) -> bool:
        return True

    registry.hub.activator = activate
    return registry


@pytest.fixture
async def http(registry: Registry) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(create_lucca_app(registry))
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


def api(http: httpx.AsyncClient, oauth: LuccaOAuth = OAUTH, **kwargs: object) -> LuccaApiClient:
    return LuccaApiClient(
        http,
        "http://lucca.test/tiny",
        "http://lucca.test/connect/token",
        oauth,
        tokens=TokenCache(),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_an_endpoint_is_created_listed_and_read(
    http: httpx.AsyncClient, registry: Registry
) -> None:
    spent: list[int] = []

    async def before_call() -> None:
        spent.append(1)

    client = api(http, before_call=before_call)
    created = await client.create_endpoint(
        "Elevo sync", "https://sync.test/x", ["employee.updated"]
    )
    assert created.endpoint.status == "active"
    assert created.secret.reveal()
    assert [e.id for e in await client.list_endpoints()] == [created.endpoint.id]
    assert await client.get_endpoint(created.endpoint.id) == created.endpoint
    assert await client.get_endpoint("424242") is None
    assert len(spent) == 4  # every call to the tenant's Lucca, not the token request
    assert registry.hub.token_requests == 1  # the token is reused


async def test_a_refused_topic_is_named_by_index(http: httpx.AsyncClient) -> None:
    with pytest.raises(LuccaRejected) as caught:
        await api(http).create_endpoint("x", "https://s.test/x", ["employee.updated", "nope"])
    assert list(caught.value.errors) == ["topics[1]"]


async def test_events_since_stop_at_older_pages(
    http: httpx.AsyncClient, registry: Registry
) -> None:
    company = registry["tiny"]
    clock = registry.clock
    assert isinstance(clock, ManualClock)
    company.add_legal_entity("Tiny", 1)
    company.add_department("R&D", 13)
    for index in range(150):
        company.hire("A", f"N{index}", start=START.date(), department_id=13, user_id=index + 1)
        clock.advance(60)
    since = clock() - timedelta(minutes=30)
    events = await api(http).events_since(since)
    assert len(events) == 30 * 3  # a hire emits employee, employment and job-position events
    assert all(e.occurred_at is not None and e.occurred_at >= since for e in events)


async def test_wrong_credentials_are_an_auth_error_without_the_secret(
    http: httpx.AsyncClient,
) -> None:
    wrong = LuccaOAuth("sync-client", Secret("not-the-secret-at-all"))
    with pytest.raises(LuccaAuthError) as caught:
        await api(http, wrong).list_endpoints()
    assert "refused the OAuth client" in str(caught.value)
    assert "not-the-secret-at-all" not in str(caught.value)


async def test_every_call_sends_the_version_and_the_cached_token(http_for: object) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/connect/token":
            assert b"client_secret=" + CLIENT_SECRET.encode() in request.content
            return httpx.Response(200, json={"access_token": "tok-1", "expires_in": 1800})
        if request.url.path.endswith("/events"):
            return httpx.Response(503, text="down for " + CLIENT_SECRET)
        return httpx.Response(200, json={"type": "webhook-endpoints", "url": "u", "items": []})

    recorder = Recorder(answer)
    client = api(http_for(recorder))  # type: ignore[operator]
    assert await client.list_endpoints() == []
    assert await client.list_endpoints() == []
    with pytest.raises(LuccaUnavailable) as caught:
        await client.events_since(START)
    assert CLIENT_SECRET not in str(caught.value)
    paths = [r.url.path for r in recorder.requests]
    assert paths.count("/connect/token") == 1
    calls = [r for r in recorder.requests if r.url.path != "/connect/token"]
    assert {r.headers["api-version"] for r in calls} == {"2024-11-01"}
    assert {r.headers["authorization"] for r in calls} == {"Bearer tok-1"}


def test_a_token_is_renewed_a_minute_before_it_expires() -> None:
    now = [0.0]
    cache = TokenCache(lambda: now[0])
    key = TokenCache.key("u", OAUTH)
    assert CLIENT_SECRET not in key
    cache.put(key, Secret("t"), 1800)
    now[0] = 1739.0
    assert cache.get(key) == Secret("t")
    now[0] = 1740.0
    assert cache.get(key) is None

"""The Lucca webhook endpoint's alerts (issue 15): a replaced endpoint is raised with what the
customer needs to delete it, and cleared once Lucca no longer knows it; a failing registration
or watch is raised and cleared when the watch works again. One notice each way, no secret."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import httpx
import orjson

from app.secret import Secret
from app.service.alerts import AlertKind, check_alerts
from app.service.lucca_webhook import watch
from app.service.resources import Resources
from app.store import lucca_endpoint
from app.store.lucca_endpoint import EndpointState, OldEndpoint
from tests.conftest import Handler
from tests.factories import TENANT
from tests.service.test_lucca_webhook import lucca_api, managed

SECRETS = (b"acme-oauth-secret", b"new-endpoint-secret", b"old-endpoint-secret", b"alerts-secret")
OLD = OldEndpoint(
    id="1",
    suspended_at="2026-12-05T07:00:00Z",
    missing_since="2026-12-05T06:40:00Z",
    delete_at="https://acme.ilucca.net/integrations/endpoints",
)


async def alerting(
    res: Resources, http_for: Callable[[Handler], httpx.AsyncClient], handler: Handler
) -> Resources:
    """A tenant whose endpoint the service manages, with an `alerts_url`."""
    res = await managed(res, http_for, handler)
    config = await res.tenants.get(TENANT)
    assert config is not None
    await res.tenants.put(
        replace(
            config, alerts_url="https://alerts.example/hook", alerts_secret=Secret("alerts-secret")
        )
    )
    res.contexts.forget(TENANT)
    return res


async def only_notice(res: Resources) -> dict[str, object]:
    """The one notice pending, read and then forgotten as if sent; no secret in it."""
    [notice_id] = await res.alerts.pending(TENANT)
    body = await res.alerts.notice(TENANT, notice_id)
    assert body is not None
    assert not [secret for secret in SECRETS if secret in body]
    await res.alerts.forget_notice(TENANT, notice_id)
    document: dict[str, object] = orjson.loads(body)
    return document


async def test_a_replaced_endpoint_is_raised_once_and_cleared_once_lucca_forgets_it(
    res: Resources, http_for: Callable[[Handler], httpx.AsyncClient]
) -> None:
    endpoints: dict[str, str | None] = {"1": "suspended", "2": "active"}
    res = await alerting(res, http_for, lucca_api(endpoints))
    state = EndpointState(
        endpoint_id="2", status="active", old_endpoints=[OLD], replayed_at="2026-12-05T07:00:00Z"
    )
    await lucca_endpoint.save(res.redis, TENANT, state)
    assert await check_alerts(res, TENANT) == 1
    assert await check_alerts(res, TENANT) == 0  # still raised: no second notice
    raised = await only_notice(res)
    assert (raised["kind"], raised["state"]) == (AlertKind.LUCCA_ENDPOINT_REPLACED, "raised")
    assert raised["facts"] == {
        "old_endpoints": [
            {"id": "1", "delete_at": OLD.delete_at, "missing_since": OLD.missing_since}
        ],
        "events_replayed": True,
    }
    assert await watch(res, TENANT) == "active"  # Lucca still knows "1": nothing changes
    assert await check_alerts(res, TENANT) == 0
    endpoints["1"] = None  # the customer deleted it
    assert await watch(res, TENANT) == "active"
    assert await check_alerts(res, TENANT) == 1
    cleared = await only_notice(res)
    assert (cleared["kind"], cleared["state"]) == (AlertKind.LUCCA_ENDPOINT_REPLACED, "cleared")
    assert await res.alerts.raised(TENANT) == set()


async def test_a_refused_oauth_client_is_raised_once_and_cleared_when_the_watch_works(
    res: Resources, http_for: Callable[[Handler], httpx.AsyncClient]
) -> None:
    lucca = lucca_api({"2": "active"})
    refusing = {"now": True}

    def answer(request: httpx.Request) -> httpx.Response:
        if refusing["now"]:  # the client's token too (a cached one is refused, then dropped)
            return httpx.Response(401, json={"error": "invalid_client"})
        return lucca(request)

    res = await alerting(res, http_for, answer)
    await lucca_endpoint.save(res.redis, TENANT, EndpointState(endpoint_id="2", status="active"))
    await watch(res, TENANT)
    state = await lucca_endpoint.load(res.redis, TENANT)
    assert state is not None
    assert state.error is not None
    assert state.error.startswith("Lucca refused the OAuth client")  # the status says why
    assert await check_alerts(res, TENANT) == 1
    await watch(res, TENANT)
    assert await check_alerts(res, TENANT) == 0
    raised = await only_notice(res)
    assert (raised["kind"], raised["state"], raised["facts"]) == (
        AlertKind.LUCCA_WEBHOOK_ERROR,
        "raised",
        {},
    )
    assert state.error not in str(raised)  # the error's text stays in the status
    refusing["now"] = False
    assert await watch(res, TENANT) == "active"
    assert await check_alerts(res, TENANT) == 1
    cleared = await only_notice(res)
    assert (cleared["kind"], cleared["state"]) == (AlertKind.LUCCA_WEBHOOK_ERROR, "cleared")


async def test_an_endpoint_the_service_no_longer_manages_raises_nothing(
    res: Resources, http_for: Callable[[Handler], httpx.AsyncClient]
) -> None:
    res = await alerting(res, http_for, lucca_api({}))
    state = EndpointState(
        endpoint_id="2", error="Lucca refused the OAuth client", old_endpoints=[OLD]
    )
    await lucca_endpoint.save(res.redis, TENANT, state)
    config = await res.tenants.get(TENANT)
    assert config is not None
    await res.tenants.put(replace(config, lucca_oauth=None))
    res.contexts.forget(TENANT)
    assert await check_alerts(res, TENANT) == 0
    assert await res.alerts.pending(TENANT) == []

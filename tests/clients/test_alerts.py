"""The alerts client: what it signs and sends, and how it reads the endpoint's answers."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import httpx
import pytest

from app.clients.alerts import AlertsClient
from app.clients.errors import AlertsError, AlertsRateLimited, AlertsUnavailable
from app.clients.http import new_http_client
from app.secret import Secret
from tests.conftest import make_settings

SECRET = Secret("alerts-secret-9h8g")
BODY = b'{"id":"n1","kind":"held_run","state":"raised"}'
NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def client(
    status: int, seen: list[httpx.Request], headers: dict[str, str] | None = None
) -> AlertsClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, headers=headers)

    return AlertsClient(httpx.AsyncClient(transport=httpx.MockTransport(answer)))


async def test_the_body_goes_as_is_signed_over_timestamp_and_body() -> None:
    seen: list[httpx.Request] = []
    assert await client(204, seen).send("https://alerts.example/hook", SECRET, BODY, now=NOW) == 204
    [request] = seen
    assert (request.method, str(request.url), request.content) == (
        "POST",
        "https://alerts.example/hook",
        BODY,
    )
    timestamp = request.headers["Elevo-Sync-Timestamp"]
    assert timestamp == str(int(NOW.timestamp()))
    mac = hmac.new(b"alerts-secret-9h8g", f"{timestamp}.".encode() + BODY, hashlib.sha256)
    assert request.headers["Elevo-Sync-Signature"] == f"v1={mac.hexdigest()}"
    assert request.headers["Content-Type"] == "application/json"
    assert SECRET.reveal() not in str(request.headers)


@pytest.mark.parametrize("status", [500, 502, 503, 408])
async def test_a_passing_failure_is_retryable(status: int) -> None:
    with pytest.raises(AlertsUnavailable) as info:
        await client(status, []).send("https://alerts.example/hook", SECRET, BODY, now=NOW)
    assert info.value.retryable


async def test_a_429_says_how_long_to_wait() -> None:
    with pytest.raises(AlertsRateLimited) as info:
        await client(429, [], {"Retry-After": "7"}).send(
            "https://alerts.example/hook", SECRET, BODY, now=NOW
        )
    assert info.value.retry_after == 7


@pytest.mark.parametrize("status", [400, 401, 404, 301])
async def test_a_refusal_is_not_retried(status: int) -> None:
    with pytest.raises(AlertsError) as info:
        await client(status, []).send("https://alerts.example/hook", SECRET, BODY, now=NOW)
    assert not info.value.retryable
    assert str(status) in str(info.value)


async def test_no_answer_is_retryable_and_names_the_host_only() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    alerts = AlertsClient(httpx.AsyncClient(transport=httpx.MockTransport(refuse)))
    with pytest.raises(AlertsUnavailable) as info:
        await alerts.send("https://alerts.example/hook?x=1", SECRET, BODY, now=NOW)
    assert info.value.retryable
    assert "alerts.example" in str(info.value)


async def test_the_egress_guard_keeps_notices_off_private_addresses() -> None:
    # A stored alerts_url that names (or resolves to) a private address reaches nothing.
    http = new_http_client(make_settings(ALLOW_HTTP_ELEVO="false"))
    try:
        with pytest.raises(AlertsUnavailable) as info:
            await AlertsClient(http).send("https://127.0.0.1:9/hook", SECRET, BODY, now=NOW)
    finally:
        await http.aclose()
    assert "address not allowed" in str(info.value)

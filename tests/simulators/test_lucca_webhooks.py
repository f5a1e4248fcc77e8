"""Signing and delivering webhook events like Lucca: headers, signature, retries, disorder."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest

from simulators.lucca import Company, ManualClock, WebhookSender, sign

SECRET = "b3YGydKxao0CYEg4-2LM81rviT-vl2JzKyf_zlewRn0cpoHzh4mRLj5_Ty5neQta"
URL = "http://sync.test/webhooks/lucca/tiny"


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Endpoint:
    """A receiving endpoint that answers from a script and records what it got."""

    def __init__(self, answers: list[int] | None = None) -> None:
        self.answers = answers or []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "GET":
            value = request.url.params.get("echo") or request.url.params.get("challenge") or ""
            return httpx.Response(200, text=value)
        status = self.answers.pop(0) if self.answers else 202
        return httpx.Response(status)

    def bodies(self) -> list[dict[str, object]]:
        return [orjson.loads(r.content) for r in self.requests]


@pytest.fixture
def endpoint() -> Endpoint:
    return Endpoint()


@pytest.fixture
def make_sender(clock: ManualClock, endpoint: Endpoint) -> Callable[..., WebhookSender]:
    def make(**options: Any) -> WebhookSender:
        client = httpx.AsyncClient(transport=httpx.MockTransport(endpoint))
        return WebhookSender(client, URL, SECRET, sleep=clock.sleep, clock=clock, **options)

    return make


def test_sign_is_base64_hmac_sha256_of_timestamp_dot_body():
    body = b'{"id":"1","topic":"ping"}'
    timestamp = "2025-01-01T08:34:23Z"
    assert sign(SECRET, timestamp, body) == expected_signature(SECRET, timestamp, body)
    assert sign(SECRET, timestamp, body) != sign(SECRET, "2025-01-01T08:34:24Z", body)
    assert len(base64.b64decode(sign(SECRET, timestamp, body))) == 32


async def test_send_signs_the_raw_body_with_a_second_precision_timestamp(
    tiny: Company, endpoint: Endpoint, make_sender
):
    clock_event = tiny.update(416, firstName="Jon")[0]
    delivery = await make_sender().send(clock_event)
    [request] = endpoint.requests
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Lucca-Timestamp"] == "2025-03-03T09:00:00Z"
    assert request.headers["Lucca-Signature"] == expected_signature(
        SECRET, "2025-03-03T09:00:00Z", request.content
    )
    assert orjson.loads(request.content) == clock_event
    assert delivery.delivered
    assert [a.status for a in delivery.attempts] == [202]


async def test_retries_non_2xx_resigning_each_attempt(
    tiny: Company, clock: ManualClock, make_sender
):
    endpoint = Endpoint([500, 429, 202])
    client = httpx.AsyncClient(transport=httpx.MockTransport(endpoint))
    sender = WebhookSender(client, URL, SECRET, sleep=clock.sleep, clock=clock)
    event = tiny.update(416, firstName="Jon")[0]
    delivery = await sender.send(event)
    assert [a.status for a in delivery.attempts] == [500, 429, 202]
    assert delivery.delivered
    assert clock.slept == [1.0, 5.0]
    stamps = [r.headers["Lucca-Timestamp"] for r in endpoint.requests]
    assert stamps == ["2025-03-03T09:00:00Z", "2025-03-03T09:00:01Z", "2025-03-03T09:00:06Z"]
    for request in endpoint.requests:
        assert request.content == endpoint.requests[0].content  # same body, fresh signature
        assert request.headers["Lucca-Signature"] == expected_signature(
            SECRET, request.headers["Lucca-Timestamp"], request.content
        )


async def test_gives_up_after_the_configured_attempts(tiny: Company, clock: ManualClock):
    endpoint = Endpoint([503] * 10)
    client = httpx.AsyncClient(transport=httpx.MockTransport(endpoint))
    sender = WebhookSender(client, URL, SECRET, retry_delays=(2, 2), sleep=clock.sleep, clock=clock)
    delivery = await sender.send(tiny.update(416, firstName="Jon")[0])
    assert not delivery.delivered
    assert len(endpoint.requests) == 3


async def test_transport_errors_are_retried(tiny: Company, clock: ManualClock):
    calls: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(202)

    client = httpx.AsyncClient(transport=httpx.MockTransport(flaky))
    sender = WebhookSender(client, URL, SECRET, sleep=clock.sleep, clock=clock)
    delivery = await sender.send(tiny.update(416, firstName="Jon")[0])
    assert [a.status for a in delivery.attempts] == [None, 202]


@pytest.mark.parametrize("status", [404, 410])
async def test_404_or_410_suspends_the_endpoint(tiny: Company, clock: ManualClock, status):
    endpoint = Endpoint([status])
    client = httpx.AsyncClient(transport=httpx.MockTransport(endpoint))
    sender = WebhookSender(client, URL, SECRET, sleep=clock.sleep, clock=clock)
    first = await sender.send(tiny.update(416, firstName="Jon")[0])
    second = await sender.send(tiny.update(416, firstName="Jo")[0])
    assert [a.status for a in first.attempts] == [status]
    assert sender.suspended
    assert second.attempts == []
    assert len(endpoint.requests) == 1


async def test_duplicates_and_shuffle(tiny: Company, endpoint: Endpoint, make_sender):
    events = [e for n in range(6) for e in tiny.set_extension(416, "e_cost_center", f"CC-{n}")]
    ids = [e["id"] for e in events]
    await make_sender().send_all(events, duplicates=1, shuffle=True, seed=3)
    received = [b["id"] for b in endpoint.bodies()]
    assert Counter(received) == Counter(ids * 2)
    assert received != [i for i in ids for _ in range(2)]
    endpoint.requests.clear()
    await make_sender().send_all(events, duplicates=1, shuffle=True, seed=3)
    assert [b["id"] for b in endpoint.bodies()] == received  # the seed fixes the order


async def test_wrong_secret_and_stale_timestamp(tiny: Company, endpoint: Endpoint, make_sender):
    event = tiny.update(416, firstName="Jon")[0]
    sender = make_sender()
    await sender.send(event, secret="not-the-secret")
    await sender.send(event, skew=-timedelta(minutes=10))
    wrong, stale = endpoint.requests
    timestamp = wrong.headers["Lucca-Timestamp"]
    assert wrong.headers["Lucca-Signature"] != expected_signature(SECRET, timestamp, wrong.content)
    assert wrong.headers["Lucca-Signature"] == expected_signature(
        "not-the-secret", timestamp, wrong.content
    )
    assert stale.headers["Lucca-Timestamp"] == "2025-03-03T08:50:00Z"
    assert stale.headers["Lucca-Signature"] == expected_signature(
        SECRET, "2025-03-03T08:50:00Z", stale.content
    )


@pytest.mark.parametrize("param", ["echo", "challenge"])
async def test_activation_get_expects_the_value_back(endpoint: Endpoint, make_sender, param):
    assert await make_sender().activate("tok-123", param=param)
    [request] = endpoint.requests
    assert request.method == "GET"
    assert request.url.params[param] == "tok-123"

"""The webhook receiver's refusals and acceptances, one by one, with what each queues."""

from __future__ import annotations

import uuid

import orjson
import pytest

from app.api.routes.webhooks import MAX_BODY_BYTES
from app.store import keys, queue
from tests.security.support import (
    ACME_BODY,
    ACME_WEBHOOK,
    ACME_WEBHOOK_OLD,
    BETA_WEBHOOK,
    Served,
    lucca_timestamp,
    sign,
    signed_headers,
)


def employee_updated(event_id: str | None = None, user: str = "2") -> bytes:
    return orjson.dumps(
        {
            "id": event_id or str(uuid.uuid4()),
            "type": "event",
            "topic": "employee.updated",
            "data": {"id": user, "type": "employee"},
        }
    )


async def post(
    served: Served,
    body: bytes,
    secret: str = ACME_WEBHOOK,
    *,
    tenant: str = "acme",
    offset: float = 0.0,
    content_type: str = "application/json",
) -> tuple[int, dict[str, object]]:
    headers = signed_headers(secret, body, offset_seconds=offset, content_type=content_type)
    response = await served.client.post(f"/webhooks/lucca/{tenant}", content=body, headers=headers)
    payload = response.json() if response.content else {}
    return response.status_code, payload


async def queued(served: Served) -> int:
    return await queue.depth(served.resources.redis)


async def runs(served: Served, tenant: str = "acme") -> int:
    """Runs indexed, a webhook's (in an index of its own) or other."""
    redis = served.resources.redis
    return int(await redis.zcard(keys.runs(tenant))) + int(
        await redis.zcard(keys.webhook_runs(tenant))
    )


async def nothing_happened(served: Served, tenant: str = "acme") -> bool:
    return await queued(served) == 0 and await runs(served, tenant) == 0


async def test_a_signed_event_is_queued_once(served: Served) -> None:
    status, answer = await post(served, employee_updated())
    assert (status, answer["status"]) == (202, "users")
    assert (await queued(served), await runs(served)) == (1, 1)


async def test_oversize_body_is_413_and_queues_nothing(served: Served) -> None:
    body = employee_updated() + b" " * MAX_BODY_BYTES
    status, answer = await post(served, body)
    assert (status, answer["error"]) == (413, "too_large")
    assert await nothing_happened(served)


async def test_a_body_at_the_limit_is_accepted(served: Served) -> None:
    body = employee_updated()
    status, _ = await post(served, body + b" " * (MAX_BODY_BYTES - len(body)))
    assert status == 202


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data"])
async def test_wrong_content_type_is_415(served: Served, content_type: str) -> None:
    status, answer = await post(served, employee_updated(), content_type=content_type)
    assert (status, answer["error"]) == (415, "unsupported_media_type")
    assert await nothing_happened(served)


@pytest.mark.parametrize("body", [b'{"id": "1", "topic": ', b"[1, 2]", b"null", b"\xff"])
async def test_malformed_json_with_a_valid_signature_is_400(served: Served, body: bytes) -> None:
    status, answer = await post(served, body)
    assert (status, answer["error"]) == (400, "bad_json")
    assert await nothing_happened(served)


async def test_a_replayed_event_is_a_duplicate_and_queues_one_job(served: Served) -> None:
    body = employee_updated("evt-replayed")
    first, answer = await post(served, body)
    assert (first, answer["status"]) == (202, "users")
    # Lucca's retry: the same event, signed again with a fresh timestamp.
    second, again = await post(served, body, offset=5)
    assert (second, again) == (202, {"status": "duplicate"})
    assert (await queued(served), await runs(served)) == (1, 1)
    assert await served.resources.redis.ttl(keys.event("acme", "evt-replayed")) > 6 * 24 * 3600


async def test_event_ids_are_deduplicated_per_tenant(served: Served) -> None:
    assert (await post(served, employee_updated("evt-shared")))[0] == 202
    status, answer = await post(served, employee_updated("evt-shared"), BETA_WEBHOOK, tenant="beta")
    assert (status, answer["status"]) == (202, "users")
    assert await queued(served) == 2


@pytest.mark.parametrize("offset", [-301, -310, -3600, 310, 3600], ids=lambda s: f"{s:+}s")
async def test_stale_or_future_timestamp_is_401(served: Served, offset: int) -> None:
    status, answer = await post(served, employee_updated(), offset=offset)
    assert (status, answer["error"]) == (401, "bad_signature")
    assert await nothing_happened(served)


async def test_a_signature_cannot_be_moved_to_a_fresh_timestamp(served: Served) -> None:
    body = employee_updated()
    headers = {
        "Content-Type": "application/json",
        "Lucca-Timestamp": lucca_timestamp(),
        "Lucca-Signature": sign(ACME_WEBHOOK, lucca_timestamp(-600), body),
    }
    response = await served.client.post("/webhooks/lucca/acme", content=body, headers=headers)
    assert response.status_code == 401
    assert await nothing_happened(served)


async def test_the_previous_secret_is_accepted_during_rotation(served: Served) -> None:
    status, answer = await post(served, employee_updated(), ACME_WEBHOOK_OLD)
    assert (status, answer["status"]) == (202, "users")
    assert await queued(served) == 1


async def test_a_dropped_secret_is_refused(served: Served) -> None:
    rotated = {**ACME_BODY, "lucca": {**ACME_BODY["lucca"], "webhook_secret": ACME_WEBHOOK}}
    assert (await served.put_tenant("acme", rotated)).status_code == 200
    status, _ = await post(served, employee_updated(), ACME_WEBHOOK_OLD)
    assert status == 401
    assert (await post(served, employee_updated(), ACME_WEBHOOK))[0] == 202


async def test_another_tenants_secret_is_refused(served: Served) -> None:
    status, answer = await post(served, employee_updated(), BETA_WEBHOOK, tenant="acme")
    assert (status, answer["error"]) == (401, "bad_signature")
    status, answer = await post(served, employee_updated(), ACME_WEBHOOK, tenant="beta")
    assert (status, answer["error"]) == (401, "bad_signature")
    assert await nothing_happened(served, "acme")
    assert await nothing_happened(served, "beta")


async def test_a_tenant_without_webhook_secret_accepts_no_event(served: Served) -> None:
    no_secret = {**ACME_BODY, "lucca": {**ACME_BODY["lucca"], "webhook_secret": None}}
    assert (await served.put_tenant("acme", no_secret)).status_code == 200
    for secret in (ACME_WEBHOOK, ACME_WEBHOOK_OLD, ""):
        status, _ = await post(served, employee_updated(), secret)
        assert status == 401
    assert await nothing_happened(served)

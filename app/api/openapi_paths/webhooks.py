"""Lucca's side: /webhooks/lucca/{tenant}, its activation echo and its signed notifications."""

from __future__ import annotations

from typing import Final

from app.api.errors import ErrorCode
from app.api.openapi_paths.common import (
    NO_TENANT,
    SLOW_BODY,
    TENANT_PARAM,
    Schema,
    error_response,
    header_param,
    json_response,
    path_param,
    ref,
    text_response,
)
from app.api.responses import LuccaEvent, WebhookAccepted
from app.api.routes.webhooks import MAX_BODY_BYTES as WEBHOOK_MAX_BODY_BYTES

_WEBHOOK_DESCRIPTION: Final = (
    "The raw body is signed: Lucca-Signature = base64(HMAC-SHA256(secret, Lucca-Timestamp + '.' "
    "+ body)), the timestamp within 5 minutes of now; every active secret of the tenant is "
    "tried. Nothing is queued unless the signature holds; an event id seen in the last 7 days "
    "answers 202 duplicate (an event whose id is missing, not a string or integer, or over 128 "
    "characters is recognised by the SHA-256 of its body). The tenant is looked up before the "
    "body is read. Beyond the tenant's ingest rate (WEBHOOK_EVENTS_PER_MINUTE) an event answers "
    "202 coalesced: its employees are synced together a few seconds later."
)


def webhook_paths() -> dict[str, Schema]:
    return {"/webhooks/lucca/{tenant}": {"get": _activate(), "post": _receive()}}


def _activate() -> Schema:
    return {
        "operationId": "activateWebhook",
        "summary": "Lucca's activation: echoes `echo` (or `challenge`).",
        "description": "The tenant is not looked up: any name answers the echo.",
        "parameters": [
            path_param("tenant", None, "Any name.", "acme"),
            {"name": "echo", "in": "query", "schema": {"type": "string"}},
            {"name": "challenge", "in": "query", "schema": {"type": "string"}},
        ],
        "responses": {
            "200": text_response("The value, echoed."),
            "400": text_response("Neither echo nor challenge was given."),
        },
    }


def _receive() -> Schema:
    event = {"schema": ref(LuccaEvent)}
    return {
        "operationId": "receiveWebhook",
        "summary": "A Lucca change notification.",
        "description": _WEBHOOK_DESCRIPTION,
        "parameters": [
            TENANT_PARAM,
            header_param("Lucca-Timestamp", "ISO 8601 time of this attempt."),
            header_param("Lucca-Signature", "base64 HMAC-SHA256 of timestamp.body."),
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": event, "application/cloudevents+json": event},
        },
        "responses": {
            "202": json_response(
                WebhookAccepted,
                "Queued, ignored (an irrelevant topic, or a tenant that is disconnecting), a"
                " duplicate, or coalesced (past the ingest rate).",
            ),
            "400": error_response(
                "Signed, but not a JSON object (or cut short).",
                ErrorCode.BAD_JSON,
                ErrorCode.DISCONNECTED,
            ),
            "401": error_response(
                "Missing, wrong, stale or future signature.", ErrorCode.BAD_SIGNATURE
            ),
            "404": NO_TENANT,
            "408": SLOW_BODY,
            "413": error_response(
                f"Body over {WEBHOOK_MAX_BODY_BYTES} bytes.", ErrorCode.TOO_LARGE
            ),
            "415": error_response("Not application/json.", ErrorCode.UNSUPPORTED_MEDIA_TYPE),
            "503": error_response(
                "Redis is unreachable or the tenant's config is unreadable: Lucca retries "
                "(never 404/410 for a tenant that may exist).",
                ErrorCode.UNAVAILABLE,
            ),
        },
    }

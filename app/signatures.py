"""Lucca webhook signatures: HMAC-SHA256 over `timestamp + "." + raw body`, base64."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from datetime import UTC, datetime

from app.secret import Secret

TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """Why a request is refused; the message is safe to return (it names no secret)."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def parse_timestamp(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SignatureError("Lucca-Timestamp is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def verify(
    secrets: Iterable[Secret],
    timestamp: str | None,
    given: str | None,
    body: bytes,
    *,
    now: datetime,
) -> None:
    """Raise SignatureError unless one active secret signed this body within ±5 minutes."""
    if not timestamp or not given:
        raise SignatureError("Lucca-Timestamp and Lucca-Signature are required")
    sent_at = parse_timestamp(timestamp)
    if abs((now - sent_at).total_seconds()) > TOLERANCE_SECONDS:
        raise SignatureError("Lucca-Timestamp is more than 5 minutes off")
    given_bytes = given.strip().encode()
    # Every secret is tried, with no early exit, so timing tells nothing about which matched.
    matched = False
    for secret in secrets:
        expected = signature(secret.reveal(), timestamp, body).encode()
        matched |= hmac.compare_digest(expected, given_bytes)
    if not matched:
        raise SignatureError("signature does not match")

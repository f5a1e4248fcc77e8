"""What both upstream clients share: the HTTP client, Retry-After, and credential hygiene."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from app.clients.egress import Resolver, guarded_transport
from app.secret import REDACTED, Secret
from app.settings import Settings

_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")

# Called with (operation, status) after every answer, and with status 0 on a transport error.
ResponseHook = Callable[[str, int], None]


def new_http_client(settings: Settings, resolver: Resolver | None = None) -> httpx.AsyncClient:
    # No redirects and no proxy variables: a tenant's URL must not lead anywhere else. Every
    # connection resolves its host and checks each address against the egress policy (no
    # loopback, private or metadata address unless the settings allow it), for stored
    # configurations too.
    transport = guarded_transport(
        settings.egress_policy(),
        resolver,
        # Idle connections close before the usual 5 s server keep-alive does: reusing one the
        # server is closing fails a request (a POST cannot be retried blindly).
        limits=httpx.Limits(
            max_connections=200, max_keepalive_connections=100, keepalive_expiry=2.0
        ),
    )
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.http_timeout_seconds, connect=5.0),
        follow_redirects=False,
        trust_env=False,
        transport=transport,
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP-date).

    None when the header is absent or garbled; a date in the past gives 0.
    """
    if value is None:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": RFC 5322's "UTC, origin unknown"
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def check_header_secret(secret: Secret, what: str) -> None:
    """Refuse a credential that an HTTP header cannot carry, before httpx echoes it in an error."""
    value = secret.reveal()
    if not value or not value.isascii() or not value.isprintable() or value != value.strip():
        raise ValueError(f"the {what} is empty or holds characters an HTTP header cannot carry")


def scrub(text: str, secret: Secret) -> str:
    """``text`` with every occurrence of the credential masked."""
    value = secret.reveal()
    return text.replace(value, REDACTED) if value else text

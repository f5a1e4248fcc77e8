"""A tenant's alerts endpoint: one signed JSON notice per POST (docs/alerts.md).

The receiver checks two headers:

    Elevo-Sync-Timestamp: 1767225600                    (Unix seconds of this attempt)
    Elevo-Sync-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>

over the raw body, and should refuse a timestamp far from its own clock (a replay). The client
is pure I/O: it signs, sends, and turns every answer into its status (2xx) or an
:class:`AlertsError`.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Final

import httpx

from app.clients.errors import AlertsError, AlertsRateLimited, AlertsUnavailable
from app.clients.http import parse_retry_after
from app.secret import Secret

TIMESTAMP_HEADER: Final = "Elevo-Sync-Timestamp"
SIGNATURE_HEADER: Final = "Elevo-Sync-Signature"
SIGNATURE_VERSION: Final = "v1"


def signature(secret: Secret, timestamp: str, body: bytes) -> str:
    """The signature header's value for this body sent at this timestamp."""
    mac = hmac.new(secret.reveal().encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


class AlertsClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def send(self, url: str, secret: Secret, body: bytes, *, now: datetime) -> int:
        """POST the notice, signed; the status of a 2xx answer, else an AlertsError
        (`retryable` for a 408, a 429, a 5xx or no answer)."""
        timestamp = str(int(now.timestamp()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(secret, timestamp, body),
        }
        target = httpx.URL(url)
        try:
            response = await self._http.post(target, content=body, headers=headers)
        except httpx.RequestError as exc:
            # The secret never travels (only its HMAC does): the reason cannot hold it.
            reason = f"{type(exc).__name__}: {exc}"
            raise AlertsUnavailable(f"alerts POST to {target.host} failed: {reason}") from exc
        status = response.status_code
        if 200 <= status < 300:
            return status
        where = f"alerts POST to {target.host} answered {status}"
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise AlertsRateLimited(where, retry_after=retry_after)
        if status == 408 or status >= 500:
            raise AlertsUnavailable(where, status=status)
        raise AlertsError(f"{where}: refused, not retried", status=status)

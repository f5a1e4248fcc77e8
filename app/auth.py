"""The admin bearer token of `/tenants/*` and `/sync/*` (service.md: `ADMIN_TOKEN`)."""

from __future__ import annotations

import hashlib
import hmac

from starlette.exceptions import HTTPException
from starlette.requests import Request

from app.secret import Secret

UNAUTHORIZED_DETAIL = "a valid admin bearer token is required"


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def require_admin(request: Request, admin_token: Secret) -> None:
    """Raise 401 unless the request carries the admin token."""
    token = bearer_token(request)
    # Comparing digests keeps both the content and the length of the token out of the timing.
    expected = hashlib.sha256(admin_token.reveal().encode()).digest()
    given = hashlib.sha256((token or "").encode()).digest()
    if token is None or not hmac.compare_digest(given, expected):
        raise HTTPException(401, UNAUTHORIZED_DETAIL, headers={"WWW-Authenticate": "Bearer"})

"""JSON answers in Lucca v3's shapes, rendered with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def error_response(
    status: int, message: str | None = None, *, retry_after: int | None = None
) -> Response:
    """Lucca v3's error body: `{"Status": ..., "Message": ...}`."""
    headers = None if retry_after is None else {"Retry-After": str(retry_after)}
    body = {"Status": status, "Message": message or _REASONS.get(status, "Error")}
    return json_response(body, status, headers)

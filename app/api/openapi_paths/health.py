"""The unguarded probes, the metrics and this description: /healthz, /readyz, /metrics and
/openapi.json."""

from __future__ import annotations

from app.api.openapi_paths.common import (
    ADMIN,
    FORBIDDEN,
    UNAUTHORIZED,
    Schema,
    json_response,
    text_response,
)
from app.api.responses import Health
from app.service.access import Scope


def health_paths() -> dict[str, Schema]:
    return {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "The process is up.",
                "responses": {"200": json_response(Health, "Up: status ok.")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Redis is reachable.",
                "responses": {
                    "200": json_response(Health, "Ready: status ready."),
                    "503": json_response(
                        Health, "Redis does not answer: status redis unreachable."
                    ),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (text exposition format); labels name tenants.",
                "security": ADMIN,
                "x-scopes": [Scope.ADMIN.value],
                "responses": {
                    "200": text_response("The metrics."),
                    "401": UNAUTHORIZED,
                    "403": FORBIDDEN,
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This description.",
                "responses": {"200": json_response({"type": "object"}, "The OpenAPI document.")},
            }
        },
    }

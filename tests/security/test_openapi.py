"""The OpenAPI description is served, and it describes exactly the routes the app has."""

from __future__ import annotations

import re
from typing import Any, cast

from starlette.routing import Mount, Route

from app.api.openapi import openapi_document
from app.main import create_app
from app.service.resources import Resources
from tests.conftest import make_settings
from tests.security.support import Served

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
ADMIN_PREFIXES = ("/tenants", "/sync/")


def app_operations() -> set[tuple[str, str]]:
    # The lifespan never runs here: the resources are not needed to list the routes.
    app = create_app(make_settings(), resources=cast(Resources, object()))
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, Mount) and route.path == "/console":
            continue  # the operator console's HTML pages are no part of the JSON API
        assert isinstance(route, Route), f"unexpected route type {route!r}"
        path = re.sub(r"\{(\w+)(?::\w+)?\}", r"{\1}", route.path)
        # Starlette adds HEAD to every GET route by itself.
        found |= {(path, m.lower()) for m in route.methods or () if m != "HEAD"}
    return found


def described_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_every_route_is_described_and_every_described_path_exists() -> None:
    routes, described = app_operations(), described_operations(openapi_document())
    assert routes - described == set(), "routes missing from app/api/openapi_paths/"
    assert described - routes == set(), "described operations the app does not have"


def test_the_contract_routes_are_all_there() -> None:
    expected = {
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/tenants", "get"),
        ("/tenants/{tenant}", "get"),
        ("/tenants/{tenant}", "put"),
        ("/tenants/{tenant}", "delete"),
        ("/tenants/{tenant}/tokens", "post"),
        ("/tenants/{tenant}/tokens", "get"),
        ("/tenants/{tenant}/tokens/{token_id}", "delete"),
        ("/tenants/{tenant}/audit", "get"),
        ("/tenants/{tenant}/pause", "post"),
        ("/tenants/{tenant}/resume", "post"),
        ("/tenants/{tenant}/webhook", "post"),
        ("/webhooks/lucca/{tenant}", "get"),
        ("/webhooks/lucca/{tenant}", "post"),
        ("/sync/{tenant}", "get"),
        ("/sync/{tenant}", "post"),
        ("/sync/{tenant}/runs/{run_id}", "get"),
        ("/sync/{tenant}/users/{user_id}", "get"),
        ("/openapi.json", "get"),
    }
    assert described_operations(openapi_document()) == expected


def test_every_operation_is_complete() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1.")
    for path, item in document["paths"].items():
        placeholders = set(re.findall(r"\{(\w+)\}", path))
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            label = f"{method.upper()} {path}"
            params = [*item.get("parameters", []), *operation.get("parameters", [])]
            in_path = {p["name"] for p in params if p["in"] == "path"}
            assert in_path == placeholders, label
            responses = operation["responses"]
            assert responses, label
            if path.startswith(ADMIN_PREFIXES) or path == "/metrics":
                assert {"adminBearer": []} in operation["security"], label
                assert "403" in responses, label
                assert "401" in responses, label
                # /metrics reads Redis best-effort (a NaN queue depth), never answering 503.
                assert path == "/metrics" or "503" in responses, label
            else:
                assert "security" not in operation, label
            if "requestBody" in operation and method == "put":
                assert "413" in responses, label


def test_the_webhook_route_describes_every_refusal() -> None:
    post = openapi_document()["paths"]["/webhooks/lucca/{tenant}"]["post"]
    assert {"202", "400", "401", "404", "413", "415", "503"} <= set(post["responses"])


async def test_the_description_is_served(served: Served) -> None:
    response = await served.client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == openapi_document()

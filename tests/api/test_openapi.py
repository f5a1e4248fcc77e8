"""The OpenAPI document: generated from the Structs, its responses pinned, its examples valid."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from app.api.errors import STATUS_OF, ErrorCode
from app.api.openapi import openapi_document
from app.api.schemas import parse_trigger
from app.clients.egress import EgressPolicy
from app.core.tenant import TenantConfig
from app.schemas.tenant import TenantBody, TenantView, parse_tenant, tenant_view
from app.secret import Secret

# Every operation and the statuses it may answer. Compared with the hand-written document of
# before issue 9, an invalid tenant name is now a 404 `unknown_tenant` everywhere: GET and
# DELETE /tenants/{tenant} no longer answer 400, PUT also answers 404.
OPERATIONS = {
    ("/healthz", "get"): {"200"},
    ("/readyz", "get"): {"200", "503"},
    ("/metrics", "get"): {"200", "401", "403"},
    ("/openapi.json", "get"): {"200"},
    ("/tenants", "get"): {"200", "401", "403", "503"},
    ("/tenants/{tenant}", "get"): {"200", "401", "403", "404", "500", "503"},
    ("/tenants/{tenant}", "put"): {"200", "201", "400", "401", "403", "404", "413", "500"}
    | {"503"},
    # 202: release=true starts a release run; 400: `release` neither true nor false (issue 13).
    ("/tenants/{tenant}", "delete"): {"202", "204", "400", "401", "403", "404", "503"},
    # Tenant tokens and the audit list (issue 12).
    ("/tenants/{tenant}/tokens", "post"): {"201", "400", "401", "403", "404", "409", "413", "503"},
    ("/tenants/{tenant}/tokens", "get"): {"200", "401", "403", "404", "503"},
    ("/tenants/{tenant}/tokens/{token_id}", "delete"): {"204", "401", "403", "404", "503"},
    ("/tenants/{tenant}/audit", "get"): {"200", "401", "403", "404", "503"},
    # Pause and resume (issue 10): kept notices, applied on resume.
    ("/tenants/{tenant}/pause", "post"): {"200", "400", "401", "403", "404", "413", "503"},
    ("/tenants/{tenant}/resume", "post"): {"200", "401", "403", "404", "413", "503"},
    # The webhook endpoint registered through Lucca's API (issue 15).
    ("/tenants/{tenant}/webhook", "post"): {"200", "201", "401", "403", "404", "409", "503"},
    ("/webhooks/lucca/{tenant}", "get"): {"200", "400"},
    # 408: a body that did not arrive in time (issue 12).
    ("/webhooks/lucca/{tenant}", "post"): {
        *("202", "400", "401", "404", "408", "413", "415", "503"),
    },
    # 409: a confirmation while a full run runs, or of a held run resolved already, or while
    # the tenant is paused (issue 10); 408 and 413: a slow or large body (issue 12).
    ("/sync/{tenant}", "post"): {"202", "400", "401", "403", "404", "408", "409", "413", "503"},
    ("/sync/{tenant}", "get"): {"200", "401", "403", "404", "503"},
    ("/sync/{tenant}/runs/{run_id}", "get"): {"200", "401", "403", "404", "503"},
    ("/sync/{tenant}/users/{user_id}", "get"): {"200", "400", "401", "403", "404", "503"},
}


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, item in openapi_document()["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    }


def refs(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(value) for value in node))
    return set()


def test_every_operation_answers_the_pinned_statuses() -> None:
    answered = {key: set(op["responses"]) for key, op in operations().items()}
    assert answered == OPERATIONS


def test_every_reference_resolves() -> None:
    document = openapi_document()
    names = set(document["components"]["schemas"])
    for ref in refs(document):
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in names, ref


def test_the_request_schemas_are_the_structs() -> None:
    schemas = openapi_document()["components"]["schemas"]
    _, generated = msgspec.json.schema_components(
        [TenantBody], ref_template="#/components/schemas/{name}"
    )
    for name, schema in generated.items():
        assert schemas[name] == schema
    assert schemas["TenantBody"]["additionalProperties"] is False
    assert schemas["SyncTrigger"]["not"] == {"required": ["users", "mode"]}


def test_each_error_code_is_listed_under_its_own_status() -> None:
    for key, operation in operations().items():
        for status, response in operation["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            for part in schema.get("allOf", []):
                for code in part.get("properties", {}).get("error", {}).get("enum", []):
                    assert STATUS_OF[ErrorCode(code)] == int(status), (key, code)


def test_the_examples_are_valid_bodies() -> None:
    put = operations()[("/tenants/{tenant}", "put")]
    example = put["requestBody"]["content"]["application/json"]["examples"]["contract"]["value"]
    stored = TenantConfig(
        tenant="acme",
        lucca_subdomain="old",
        lucca_api_key=Secret("k"),
        elevo_scim_url="https://elevo.example/old",
        elevo_token=Secret("t"),
        webhook_secrets=(Secret("w"),),
    )
    config = parse_tenant(
        "acme", example, existing=stored, allow_http_elevo=False, egress=EgressPolicy()
    )
    assert config.lucca_api_key == Secret("k")
    trigger = operations()[("/sync/{tenant}", "post")]
    for named in trigger["requestBody"]["content"]["application/json"]["examples"].values():
        parse_trigger(msgspec.json.encode(named["value"]))


@pytest.mark.parametrize("webhooks", [(), ("a",), ("a", "b")])
def test_the_tenant_view_is_described_by_its_struct(webhooks: tuple[str, ...]) -> None:
    config = TenantConfig(
        tenant="acme",
        lucca_subdomain="acme",
        lucca_api_key=Secret("k"),
        elevo_scim_url="https://elevo.example/acme",
        elevo_token=Secret("t"),
        webhook_secrets=tuple(Secret(w) for w in webhooks),
    )
    view = tenant_view(config)
    assert msgspec.to_builtins(msgspec.convert(view, TenantView)) == view

"""Lucca's current API for webhooks, simulated (OpenAPI document lucca-api@2024-11-01.json):

    POST /connect/token                              OAuth 2 client credentials (form)
    GET  /{sub}/lucca-api/webhook-endpoints          list (paged: `page` cursor, `limit`)
    POST /{sub}/lucca-api/webhook-endpoints          create: passes the activation GET first
    GET  /{sub}/lucca-api/webhook-endpoints/{id}     one endpoint
    GET  /{sub}/lucca-api/events                     events, newest first (`status` filter)
    GET  /{sub}/lucca-api/webhook-deliveries         deliveries (`status`, `webhookEndpoint.id`)

Every `/lucca-api` call needs `Api-Version: 2024-11-01` and a Bearer token of that subdomain's
client, and counts in the company's rate limit (the domain's 50 per minute). Errors are
`application/problem+json`. A topic outside the document's list is refused with a 400 naming
`topics[i]`, the way ASP.NET's validation does. State and deliveries: endpoints.py.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import parse_qsl

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulators.lucca.company import Company, Registry
from simulators.lucca.endpoints import (
    KNOWN_TOPICS,
    CompanyHooks,
    delivery_document,
    endpoint_document,
)
from simulators.lucca.responses import json_response

API_VERSION: Final = "2024-11-01"
MAX_LIMIT: Final = 100
Monotonic = Callable[[], float]
Handler = Callable[[Request, Company, CompanyHooks], Awaitable[Response]]


def problem(status: int, title: str, errors: dict[str, list[str]] | None = None) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if errors:
        body["errors"] = errors
    headers = {"Api-Version": API_VERSION}
    return Response(orjson.dumps(body), status, headers, media_type="application/problem+json")


def _answer(body: Any, status: int = 200) -> Response:
    return json_response(body, status, {"Api-Version": API_VERSION})


class LuccaApi:
    def __init__(self, registry: Registry, monotonic: Monotonic) -> None:
        self.registry = registry
        self.hub = registry.hub
        self._monotonic = monotonic

    async def token(self, request: Request) -> Response:
        # The form is parsed by hand: python-multipart is not a dependency.
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        grant, client_id, secret = (
            form.get("grant_type"),
            form.get("client_id"),
            form.get("client_secret"),
        )
        if grant != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        if not isinstance(client_id, str) or not isinstance(secret, str):
            return json_response({"error": "invalid_client"}, 400)
        token = self.hub.issue_token(client_id, secret, self.registry.clock())
        if token is None:
            return json_response({"error": "invalid_client"}, 400)
        body = {"access_token": token, "token_type": "Bearer", "expires_in": 1800}
        return json_response(body)

    def route(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def checked(request: Request) -> Response:
            company = self.registry.get(request.path_params["subdomain"])
            if company is None:
                return problem(404, "Unknown domain")
            refused = self._refusal(request, company)
            if refused is not None:
                return refused
            hooks = self.hub.hooks(company)
            hooks.fan_out(company)
            return await handler(request, company, hooks)

        return checked

    def _refusal(self, request: Request, company: Company) -> Response | None:
        retry_after = company.limiter.hit(self._monotonic())
        if retry_after is not None:
            response = problem(429, "Too Many Requests")
            response.headers["Retry-After"] = str(retry_after)
            return response
        forced = company.faults.next_forced()
        if forced is not None:
            return problem(forced.status, "Forced")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        owner = self.hub.token_subdomain(token.strip(), self.registry.clock())
        if scheme.lower() != "bearer" or owner != company.subdomain:
            return problem(401, "Unauthorized")
        if request.headers.get("api-version") != API_VERSION:
            return problem(400, "Bad Request", {"Api-Version": [f"must be {API_VERSION}"]})
        return None

    async def list_endpoints(
        self, request: Request, company: Company, hooks: CompanyHooks
    ) -> Response:
        items = [endpoint_document(e, company.source) for e in hooks.endpoints.values()]
        return _page(request, company, "webhook-endpoints", items)

    async def get_endpoint(
        self, request: Request, company: Company, hooks: CompanyHooks
    ) -> Response:
        endpoint = hooks.endpoints.get(request.path_params["endpoint_id"])
        if endpoint is None:
            return problem(404, "Not Found")
        return _answer(endpoint_document(endpoint, company.source))

    async def create_endpoint(
        self, request: Request, company: Company, hooks: CompanyHooks
    ) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        errors = _endpoint_errors(body)
        if errors:
            return problem(400, "One or more validation errors occurred.", errors)
        endpoint = hooks.create(
            company, body["name"], body["webhookUrl"], list(body["topics"]), body["apiVersion"]
        )
        # Lucca activates a new endpoint with a GET its URL must echo.
        if await (self.hub.activator or activate)(endpoint.webhook_url):
            endpoint.status = "active"
        document = endpoint_document(endpoint, company.source) | {"secret": endpoint.secret}
        return _answer(document, 201)

    async def list_events(
        self, request: Request, company: Company, hooks: CompanyHooks
    ) -> Response:
        wanted = request.query_params.get("status")
        events = [
            event
            for event in reversed(company.emitted)
            if wanted is None or hooks.event_status(event["id"]) == wanted
        ]
        return _page(request, company, "events", events)

    async def list_deliveries(
        self, request: Request, company: Company, hooks: CompanyHooks
    ) -> Response:
        wanted = request.query_params.get("status")
        endpoint_id = request.query_params.get("webhookEndpoint.id")
        items = [
            delivery_document(d, company.source)
            for d in hooks.deliveries
            if (wanted is None or d.status == wanted)
            and (endpoint_id is None or d.endpoint_id == endpoint_id)
        ]
        return _page(request, company, "webhook-deliveries", items)


async def activate(url: str) -> bool:
    challenge = secrets.token_urlsafe(16)
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.get(url, params={"echo": challenge})
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.text == challenge


def _endpoint_errors(body: object) -> dict[str, list[str]]:
    if not isinstance(body, dict):
        return {"$": ["The request body must be a webhook-endpoint object."]}
    errors: dict[str, list[str]] = {}
    for name in ("name", "webhookUrl", "apiVersion"):
        if not isinstance(body.get(name), str) or not body[name]:
            errors[name] = [f"The {name} field is required."]
    topics = body.get("topics")
    if not isinstance(topics, list) or not topics:
        errors["topics"] = ["The topics field is required."]
        return errors
    for index, topic in enumerate(topics):
        if topic not in KNOWN_TOPICS:
            errors[f"topics[{index}]"] = [f"'{topic}' is not a valid topic."]
    return errors


def _page(request: Request, company: Company, kind: str, items: list[Any]) -> Response:
    try:
        limit = int(request.query_params.get("limit", "25"))
        cursor = request.query_params.get("page", "!0")
        offset = int(cursor.removeprefix("!"))
    except ValueError:
        return problem(400, "Bad Request", {"page": ["Invalid page or limit."]})
    if not 0 <= limit <= MAX_LIMIT or offset < 0:
        return problem(400, "Bad Request", {"limit": [f"Must be within 0..{MAX_LIMIT}."]})
    url = f"{company.source}/lucca-api/{kind}"
    base = str(request.url.remove_query_params(["page"]))

    def link(at: int) -> dict[str, str]:
        return {"href": str(httpx.URL(base).copy_merge_params({"page": f"!{at}"}))}

    following = offset + limit
    body = {
        "type": kind,
        "url": url,
        "totalCount": len(items),
        "items": items[offset:following],
        "links": {
            "prev": link(max(0, offset - limit)) if offset else None,
            "next": link(following) if limit and following < len(items) else None,
        },
    }
    return _answer(body)


def lucca_api_routes(registry: Registry, monotonic: Monotonic = time.monotonic) -> list[Route]:
    api = LuccaApi(registry, monotonic)
    prefix = "/{subdomain}/lucca-api"
    return [
        Route("/connect/token", api.token, methods=["POST"]),
        Route(f"{prefix}/webhook-endpoints", api.route(api.list_endpoints), methods=["GET"]),
        Route(f"{prefix}/webhook-endpoints", api.route(api.create_endpoint), methods=["POST"]),
        Route(
            f"{prefix}/webhook-endpoints/{{endpoint_id}}",
            api.route(api.get_endpoint),
            methods=["GET"],
        ),
        Route(f"{prefix}/events", api.route(api.list_events), methods=["GET"]),
        Route(f"{prefix}/webhook-deliveries", api.route(api.list_deliveries), methods=["GET"]),
    ]

"""The simulated Lucca v3 directory API, one path prefix per subdomain.

    GET /{subdomain}/api/v3/users         listing, or a fetch by `id=` (see query.py)
    GET /{subdomain}/api/v3/users/{id}    one user as `data: {...}`; an unknown id answers 500

Each request passes, in order: unknown subdomain (404) → added latency (408 past 5 s) →
rate limit (429 + Retry-After) → forced status → API key (401) → random 500 → parameters (400).
Every answer for a known subdomain is recorded in that company's `requests` log.
The control API (control.py) lives under `/_control`; Lucca's current webhook API (OAuth token,
`/{subdomain}/lucca-api/webhook-endpoints`, events, deliveries) is lucca_api.py.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulators.lucca.company import Company, Registry, User
from simulators.lucca.control import control_routes
from simulators.lucca.faults import RequestKind
from simulators.lucca.lucca_api import lucca_api_routes
from simulators.lucca.query import (
    DEFAULT_PROJECTION,
    QueryError,
    UserQuery,
    parse_fields,
    parse_query,
    project_user,
    renderer,
)
from simulators.lucca.responses import error_response, json_response

Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
REQUEST_TIMEOUT = 5.0


def _authorized(request: Request, api_key: str) -> bool:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    name, _, key = credentials.strip().partition("=")
    if scheme.lower() != "lucca" or name != "application":
        return False
    return hmac.compare_digest(key.encode(), api_key.encode())


class _Directory:
    """The endpoints, with what they share: the registry, a clock, a sleep, a listing cache."""

    def __init__(self, registry: Registry, monotonic: Monotonic, sleep: Sleep) -> None:
        self.registry = registry
        self._monotonic = monotonic
        self._sleep = sleep
        # Paging through a listing re-selects the same users: keep the last selection per
        # subdomain until the company changes (its version) or the day turns.
        self._selections: dict[str, tuple[tuple[object, ...], list[User]]] = {}

    async def list_users(self, request: Request) -> Response:
        kind: RequestKind = "by_id" if "id" in request.query_params else "listing"
        return await self._serve(request, kind, self._render_list)

    async def get_user(self, request: Request) -> Response:
        return await self._serve(request, "by_id", self._render_one)

    async def _serve(
        self,
        request: Request,
        kind: RequestKind,
        render: Callable[[Company, Request], Response],
    ) -> Response:
        company = self.registry.get(request.path_params["subdomain"])
        if company is None:
            return error_response(404, "Unknown domain")
        arrived = self._monotonic()
        response = await self._gate(company, request)
        if response is None:
            try:
                response = render(company, request)
            except QueryError as exc:
                response = error_response(400, str(exc))
        params = dict(request.query_params)
        company.requests.record(kind, request.url.path, params, response.status_code, arrived)
        return response

    async def _gate(self, company: Company, request: Request) -> Response | None:
        """The answer when the request does not get through to the data, else None."""
        faults = company.faults
        if faults.latency >= REQUEST_TIMEOUT:
            await self._sleep(REQUEST_TIMEOUT)
            return error_response(408)
        if faults.latency > 0:
            await self._sleep(faults.latency)
        retry_after = company.limiter.hit(self._monotonic())
        if retry_after is not None:
            return error_response(429, "API rate limit exceeded", retry_after=retry_after)
        forced = faults.next_forced()
        if forced is not None:
            return error_response(forced.status, retry_after=forced.retry_after)
        if not _authorized(request, company.api_key):
            return error_response(401, "Invalid or missing API key")
        if faults.random_error():
            return error_response(500)
        return None

    def _render_list(self, company: Company, request: Request) -> Response:
        query = parse_query(request.query_params.multi_items())
        selected = self._select(company, query)
        if query.ids is None and company.faults.truncate_to is not None:
            selected = selected[: company.faults.truncate_to]
        page = selected[query.offset : query.offset + query.limit]
        render = renderer(query.projection, company.source)
        items = [render(user) for user in page]
        return json_response({"header": self._header(company), "data": {"items": items}})

    def _render_one(self, company: Company, request: Request) -> Response:
        unknown = set(request.query_params) - {"fields"}
        if unknown:
            raise QueryError(f"unsupported parameter(s): {', '.join(sorted(unknown))}")
        fields = request.query_params.get("fields")
        projection = DEFAULT_PROJECTION if fields is None else parse_fields(fields)
        try:
            user = company.find(int(request.path_params["user_id"]))
        except ValueError:
            raise QueryError("the user id must be an integer") from None
        if user is None:
            # Lucca answers an unknown id here with a 500, hence the `id=` filter in the sync.
            return error_response(500, "User Not Found")
        data = project_user(user, projection, company.source)
        return json_response({"header": self._header(company), "data": data})

    def _select(self, company: Company, query: UserQuery) -> list[User]:
        today = company.today().isoformat()
        if query.ids is not None:
            found = (company.find(i) for i in sorted(set(query.ids)))
            return query.select((u for u in found if u is not None), today)
        # The company itself is in the key: a replaced company starts again at version 0.
        key = (company, company.version, today, query.filter_key())
        cached = self._selections.get(company.subdomain)
        if cached is not None and cached[0] == key:
            return cached[1]
        selected = query.select(company.users(), today)
        self._selections[company.subdomain] = (key, selected)
        return selected

    @staticmethod
    def _header(company: Company) -> dict[str, Any]:
        return {"generated": company.local_timestamp(), "principal": company.principal}


def create_lucca_app(
    registry: Registry,
    *,
    monotonic: Monotonic = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> Starlette:
    """The simulator for every company of `registry`; `monotonic` drives the rate limit."""
    directory = _Directory(registry, monotonic, sleep)
    routes = [
        *control_routes(registry),
        *lucca_api_routes(registry, monotonic),
        Route("/{subdomain}/api/v3/users", directory.list_users, methods=["GET"]),
        Route("/{subdomain}/api/v3/users/{user_id}", directory.get_user, methods=["GET"]),
    ]
    return Starlette(routes=routes)

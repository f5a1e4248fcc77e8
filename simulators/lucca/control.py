"""Control API: lets a process that did not create a company drive it. JSON in, JSON out.

    GET    /_control                     {"companies": [{"subdomain", "users"}]}
    PUT    /_control/{sub}               create or replace a generated company -> 201
           {"api_key": "...", "size": 0, "seed": 0, "today": "2025-03-03" | null,
            "timezone": "Europe/Paris", "rate_limit": 50 | null, "skip_code": "e_skip_elevo_sync",
            "skip_presence": "some" | "nobody" | "everyone"}
           (only api_key is required; rate_limit defaults to the registry's; skip_presence
           says who has the skip field: most not, by default; hide_extension_section below
           makes the key lose it)
    GET    /_control/{sub}               summary: users, version, today, faults, rate limit
    DELETE /_control/{sub}               -> 204
    GET    /_control/{sub}/users         every user (former ones too), departments, legal entities
    POST   /_control/{sub}/mutations     {"op": <Company method>, ...its keyword arguments}
           -> {"events": [...]}; ops: hire, update, set_job, set_contract, set_extension,
           rename_department, delete, hide_extension_section, show_extension_section;
           dates (start, end) as "YYYY-MM-DD"; e.g. {"op": "update", "user_id": 416,
           "firstName": "Jean"} or {"op": "set_contract", "user_id": 416, "end": "2025-03-31"}
    GET    /_control/{sub}/faults        the current faults
    PUT    /_control/{sub}/faults        any of {"error_rate", "seed", "latency", "truncate_to",
           "rate_limit", "force": {"status", "count", "retry_after"} or a list of them}
    DELETE /_control/{sub}/faults        clear every fault (the rate limit stays)
    GET    /_control/{sub}/counters      {"total", "by_id", "listings", "by_status", "requests"}
    DELETE /_control/{sub}/counters      reset the counters and the rate-limit window
    PUT    /_control/{sub}/oauth         {"client_id", "client_secret"}: an OAuth client of the
           company for Lucca's webhook API (lucca_api.py)
    POST   /_control/{sub}/deliveries    one round of webhook deliveries, now -> {"attempted"}

Errors: 400 (bad body), 404 (unknown company, user or department). No authentication: the
simulator only ever listens on loopback.
"""

from __future__ import annotations

import inspect
from datetime import date
from typing import Any, cast
from zoneinfo import ZoneInfoNotFoundError

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulators.lucca.company import Company, Registry
from simulators.lucca.generator import SKIP_PRESENCES, SkipPresence, generate_company
from simulators.lucca.responses import error_response, json_response
from simulators.lucca.v3 import UnknownEntity

MUTATIONS = frozenset(
    {
        "hire", "update", "set_job", "set_contract", "set_extension", "rename_department",
        "delete", "hide_extension_section", "show_extension_section",
    }
)  # fmt: skip
_DATE_ARGS = ("start", "end")
_CREATE_KEYS = {
    "api_key", "size", "seed", "today", "timezone", "rate_limit", "skip_code", "skip_presence",
}  # fmt: skip
_FAULT_KEYS = {"error_rate", "seed", "latency", "truncate_to", "rate_limit", "force"}


class BadRequest(ValueError):
    pass


def _optional_int(body: dict[str, Any], key: str, default: int | None) -> int | None:
    value = body.get(key, default)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise BadRequest(f"{key} must be an integer or null")
    return value


def _skip_presence(body: dict[str, Any]) -> SkipPresence:
    value = body.get("skip_presence", "some")
    if value not in SKIP_PRESENCES:
        raise BadRequest(f"skip_presence must be one of {', '.join(SKIP_PRESENCES)}")
    return cast(SkipPresence, value)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _check_keys(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(f"unknown key(s): {', '.join(sorted(unknown))}")


def summary(company: Company) -> dict[str, Any]:
    return {
        "subdomain": company.subdomain,
        "users": len(company),
        "version": company.version,
        "today": company.today().isoformat(),
        "rate_limit": company.limiter.limit,
        "faults": company.faults.snapshot(),
        "hidden_sections": company.hidden_sections(),
    }


def dump(company: Company) -> dict[str, Any]:
    """The whole directory, as a test or the demo wants to see it."""
    return {
        "subdomain": company.subdomain,
        "timezone": company.tz.key,
        "today": company.today().isoformat(),
        "departments": [{"id": d.id, "name": d.name} for d in company.departments.values()],
        "legalEntities": [{"id": e.id, "name": e.name} for e in company.legal_entities.values()],
        "hiddenSections": company.hidden_sections(),
        "users": company.users(),
    }


def apply_mutation(company: Company, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Call the `op` method of `company` with the rest of `body`; its events."""
    args = dict(body)
    op = args.pop("op", None)
    if op not in MUTATIONS:
        raise BadRequest(f"op must be one of {sorted(MUTATIONS)}")
    for key in _DATE_ARGS:
        if isinstance(args.get(key), str):
            try:
                args[key] = date.fromisoformat(args[key])
            except ValueError:
                raise BadRequest(f"{key} must be a date (YYYY-MM-DD)") from None
    method = getattr(company, op)
    try:
        inspect.signature(method).bind(**args)
    except TypeError as exc:
        raise BadRequest(f"{op}: {exc}") from None
    events: list[dict[str, Any]] | None = method(**args)
    return events or []


def apply_faults(company: Company, body: dict[str, Any]) -> None:
    _check_keys(body, _FAULT_KEYS)
    faults = company.faults
    if "error_rate" in body:
        faults.set_error_rate(float(body["error_rate"]), seed=int(body.get("seed", 0)))
    if "latency" in body:
        faults.latency = float(body["latency"])
    if "truncate_to" in body:
        faults.truncate_to = _optional_int(body, "truncate_to", None)
    if "rate_limit" in body:
        company.limiter.limit = _optional_int(body, "rate_limit", None)
    forced = body.get("force", [])
    for spec in forced if isinstance(forced, list) else [forced]:
        if not isinstance(spec, dict) or "status" not in spec:
            raise BadRequest('force takes {"status", "count", "retry_after"}')
        faults.force(
            int(spec["status"]), int(spec.get("count", 1)), retry_after=spec.get("retry_after")
        )


class _Control:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _company(self, request: Request) -> Company:
        subdomain = request.path_params["subdomain"]
        company = self.registry.get(subdomain)
        if company is None:
            raise UnknownEntity(f"no company {subdomain!r}")
        return company

    async def dispatch(self, request: Request) -> Response:
        """Route by method and resource; map the errors of every handler to one shape."""
        handler = self._handlers.get((request.method, request.path_params.get("resource", "")))
        if handler is None:
            return error_response(405, f"{request.method} is not supported here")
        try:
            return await handler(self, request)
        except UnknownEntity as exc:
            return error_response(404, str(exc.args[0]))
        except (ValueError, TypeError, ZoneInfoNotFoundError) as exc:
            return error_response(400, str(exc))

    async def companies(self, request: Request) -> Response:
        listed = [{"subdomain": c.subdomain, "users": len(c)} for c in self.registry]
        return json_response({"companies": listed})

    async def create(self, request: Request) -> Response:
        body = await _body(request)
        _check_keys(body, _CREATE_KEYS)
        if not isinstance(body.get("api_key"), str) or not body["api_key"]:
            raise BadRequest("api_key is required")
        today = body.get("today")
        company = generate_company(
            request.path_params["subdomain"],
            int(body.get("size", 0)),
            seed=int(body.get("seed", 0)),
            today=None if today is None else date.fromisoformat(today),
            api_key=body["api_key"],
            timezone=body.get("timezone", "Europe/Paris"),
            clock=self.registry.clock,
            rate_limit=_optional_int(body, "rate_limit", self.registry.rate_limit),
            skip_code=body.get("skip_code", "e_skip_elevo_sync"),
            skip_presence=_skip_presence(body),
        )
        self.registry.add(company)
        return json_response(summary(company), 201)

    async def show(self, request: Request) -> Response:
        return json_response(summary(self._company(request)))

    async def remove(self, request: Request) -> Response:
        self.registry.remove(self._company(request).subdomain)
        return Response(status_code=204)

    async def users(self, request: Request) -> Response:
        return json_response(dump(self._company(request)))

    async def mutate(self, request: Request) -> Response:
        company = self._company(request)
        return json_response({"events": apply_mutation(company, await _body(request))})

    async def faults(self, request: Request) -> Response:
        company = self._company(request)
        if request.method == "PUT":
            apply_faults(company, await _body(request))
        elif request.method == "DELETE":
            company.faults.clear()
        return json_response({**company.faults.snapshot(), "rate_limit": company.limiter.limit})

    async def counters(self, request: Request) -> Response:
        company = self._company(request)
        if request.method == "DELETE":
            company.requests.reset()
            company.limiter.reset()
        return json_response(company.requests.snapshot())

    async def oauth(self, request: Request) -> Response:
        company, body = self._company(request), await _body(request)
        _check_keys(body, {"client_id", "client_secret"})
        client_id, secret = body.get("client_id"), body.get("client_secret")
        if not isinstance(client_id, str) or not isinstance(secret, str) or not secret:
            raise BadRequest("client_id and client_secret are required")
        self.registry.hub.add_client(company.subdomain, client_id, secret)
        return Response(status_code=204)

    async def deliveries(self, request: Request) -> Response:
        company = self._company(request)
        async with httpx.AsyncClient(timeout=5.0) as http:
            attempted = await self.registry.hub.hooks(company).deliver(
                http, company, company.clock()
            )
        return json_response({"attempted": attempted})

    _handlers = {
        ("GET", ""): show,
        ("PUT", ""): create,
        ("DELETE", ""): remove,
        ("GET", "users"): users,
        ("POST", "mutations"): mutate,
        ("GET", "faults"): faults,
        ("PUT", "faults"): faults,
        ("DELETE", "faults"): faults,
        ("GET", "counters"): counters,
        ("DELETE", "counters"): counters,
        ("PUT", "oauth"): oauth,
        ("POST", "deliveries"): deliveries,
    }


def control_routes(registry: Registry) -> list[Route]:
    """The `/_control/...` routes."""
    control = _Control(registry)
    methods = ["GET", "PUT", "POST", "DELETE"]
    return [
        Route("/_control", control.companies, methods=["GET"]),
        Route("/_control/{subdomain}", control.dispatch, methods=methods),
        Route("/_control/{subdomain}/{resource}", control.dispatch, methods=methods),
    ]

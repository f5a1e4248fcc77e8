"""A fast, in-memory SCIM 2.0 stand-in for Elevo, for benchmarks at 100,000 profiles.

scim2-server (the contract's reference) is a threaded wsgiref server speaking HTTP/1.0 with
no keep-alive, whose filters scan every resource: fine for tests, too slow for a
reconciliation of 100,000 employees. This one serves exactly what the sync uses, and the
tests (tests/simulators/test_fastscim.py) check that it answers like scim2-server does:

    GET    /{tenant}/v2/Users?filter=&startIndex=&count=   list; filters: `externalId eq "x"`
           (case-exact), `userName eq "x"` (case-insensitive),
           `urn:ietf:params:scim:schemas:extension:elevo:2.0:User:syncSource eq "x"`
    POST   /{tenant}/v2/Users                              201, or 409 on a taken userName
    GET    /{tenant}/v2/Users/{id}                         200 with ETag, or 404
    PATCH  /{tenant}/v2/Users/{id}                         add/replace/remove; If-Match -> 412;
                                                           204 with the new ETag
    DELETE /{tenant}/v2/Users/{id}                         204
    GET    /_fastscim/stats                                requests per tenant, method, status

Every tenant springs into being on first use (like scim2-server's --dynamic-tenants); every
request needs `Authorization: Bearer <token>`. `meta.lastModified` is the time a change became
visible, to the microsecond: the benchmarks read it to time webhook -> Elevo.

    python -m simulators.fastscim --port 8090 --token T
"""

from __future__ import annotations

import argparse
import copy
import hmac
import itertools
import re
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SCIM_JSON = "application/scim+json"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ELEVO = "urn:ietf:params:scim:schemas:extension:elevo:2.0:User"
EXTENSIONS = (ENTERPRISE, ELEVO)
SYNC_SOURCE = f"{ELEVO}:syncSource".lower()
MULTI_VALUED = frozenset({"emails", "customfields", "phonenumbers", "addresses"})
READ_ONLY = frozenset({"id", "meta", "schemas"})

_FILTER = re.compile(r'^\s*([A-Za-z0-9:._-]+)\s+eq\s+("(?:[^"\\]|\\.)*")\s*$', re.IGNORECASE)


class ScimError(Exception):
    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _etag(version: int) -> str:
    return f'W/"{version}"'


@dataclass
class Profile:
    resource: dict[str, Any]
    version: int = 1


@dataclass
class Store:
    """One tenant's users, with the indexes the sync's filters need."""

    users: dict[str, Profile] = field(default_factory=dict)
    by_user_name: dict[str, str] = field(default_factory=dict)  # casefolded -> id
    by_external_id: dict[str, list[str]] = field(default_factory=dict)
    generation: int = 0  # bumped on every write: list caches key on it
    _managed: tuple[int, str, list[str]] | None = None

    def managed(self, value: str) -> list[str]:
        wanted = value.casefold()
        cached = self._managed
        if cached is not None and cached[0] == self.generation and cached[1] == wanted:
            return cached[2]
        ids = [
            uid
            for uid, profile in self.users.items()
            if str((profile.resource.get(ELEVO) or {}).get("syncSource", "")).casefold() == wanted
        ]
        self._managed = (self.generation, wanted, ids)
        return ids

    def index(self, uid: str, resource: dict[str, Any]) -> None:
        self.by_user_name[str(resource["userName"]).casefold()] = uid
        external = resource.get("externalId")
        if isinstance(external, str):
            self.by_external_id.setdefault(external, []).append(uid)

    def unindex(self, uid: str, resource: dict[str, Any]) -> None:
        name = str(resource.get("userName", "")).casefold()
        if self.by_user_name.get(name) == uid:
            del self.by_user_name[name]
        external = resource.get("externalId")
        if isinstance(external, str) and external in self.by_external_id:
            holders = [u for u in self.by_external_id[external] if u != uid]
            if holders:
                self.by_external_id[external] = holders
            else:
                del self.by_external_id[external]


# -- PATCH ----------------------------------------------------------------------------------


def _split_path(path: str) -> tuple[str | None, list[str]]:
    """(extension URN or None, attribute names) of a PATCH path; no value filters."""
    if "[" in path:
        raise ScimError(400, f"filtered paths are not supported: {path}", "invalidPath")
    lowered = path.lower()
    for urn in (*EXTENSIONS, CORE):
        if lowered.startswith(urn.lower() + ":"):
            rest = path[len(urn) + 1 :]
            return (None if urn == CORE else urn), rest.split(".")
        if lowered == urn.lower():
            return urn, []
    return None, path.split(".")


def _find_key(container: dict[str, Any], name: str) -> str:
    """The container's own spelling of an attribute name (names are case-insensitive)."""
    lowered = name.lower()
    for key in container:
        if key.lower() == lowered:
            return key
    return name


def _apply(resource: dict[str, Any], operation: dict[str, Any]) -> None:
    op = str(operation.get("op", "")).lower()
    path = operation.get("path")
    value = operation.get("value")
    if op not in {"add", "replace", "remove"}:
        raise ScimError(400, f"unknown op {operation.get('op')!r}", "invalidSyntax")
    if not path:
        if op == "remove" or not isinstance(value, dict):
            raise ScimError(400, "a remove needs a path; an add or replace a value", "noTarget")
        for key, item in value.items():
            _apply(resource, {"op": op, "path": key, "value": item})
        return
    extension, names = _split_path(str(path))
    container: dict[str, Any] = resource
    if extension is not None:
        if not names:  # the whole extension
            _set(resource, extension, op, value)
            return
        key = _find_key(resource, extension)
        if op == "remove" and key not in resource:
            return
        container = resource.setdefault(key, {})
    for name in names[:-1]:
        key = _find_key(container, name)
        if op == "remove" and key not in container:
            return
        child = container.setdefault(key, {})
        if not isinstance(child, dict):
            raise ScimError(400, f"{path} does not lead to a complex attribute", "invalidPath")
        container = child
    leaf = names[-1]
    if leaf.lower() in READ_ONLY and container is resource:
        raise ScimError(400, f"{leaf} is read-only", "mutability")
    _set(container, leaf, op, value)
    _prune(resource)


def _set(container: dict[str, Any], name: str, op: str, value: Any) -> None:
    key = _find_key(container, name)
    if op == "remove" or value is None:
        container.pop(key, None)
    elif op == "add" and name.lower() in MULTI_VALUED and isinstance(container.get(key), list):
        items = value if isinstance(value, list) else [value]
        container[key] = [*container[key], *items]
    elif op == "add" and isinstance(value, dict) and isinstance(container.get(key), dict):
        container[key] = {**container[key], **value}
    else:
        container[key] = value


def _prune(resource: dict[str, Any]) -> None:
    for key in list(resource):
        value = resource[key]
        if isinstance(value, dict):
            for sub in [k for k, v in value.items() if v in ({}, [], None)]:
                del value[sub]
            if not value:
                del resource[key]
        elif value == [] or value is None:
            del resource[key]


# -- the app --------------------------------------------------------------------------------


class FastScim:
    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self.tenants: dict[str, Store] = {}
        self.stats: Counter[tuple[str, str, int]] = Counter()
        self._ids = itertools.count(1)

    def store(self, tenant: str) -> Store:
        found = self.tenants.get(tenant)
        if found is None:
            found = self.tenants[tenant] = Store()
        return found

    # -- plumbing ---------------------------------------------------------------------------

    @staticmethod
    def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(orjson.dumps(body), status, headers=headers, media_type=SCIM_JSON)

    @classmethod
    def _error(cls, exc: ScimError) -> Response:
        body: dict[str, Any] = {"schemas": [ERROR], "status": str(exc.status)}
        if exc.scim_type:
            body["scimType"] = exc.scim_type
        body["detail"] = exc.detail
        return cls._json(body, exc.status)

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self._token
        )

    async def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise ScimError(400, "the body is not JSON", "invalidSyntax") from None
        if not isinstance(body, dict):
            raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
        return body

    def _location(self, request: Request, tenant: str, uid: str) -> str:
        return f"{request.base_url}{tenant}/v2/Users/{uid}"

    def _view(self, request: Request, tenant: str, profile: Profile) -> dict[str, Any]:
        resource = profile.resource
        meta = resource["meta"]
        meta["location"] = self._location(request, tenant, resource["id"])
        meta["version"] = _etag(profile.version)
        return resource

    async def dispatch(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        uid = request.path_params.get("uid")
        status = 500
        try:
            if not self._authorized(request):
                raise ScimError(
                    401, "Authorization failure. The authorization header is invalid or missing"
                )
            response = await self._route(request, tenant, uid)
            status = response.status_code
            return response
        except ScimError as exc:
            status = exc.status
            return self._error(exc)
        finally:
            self.stats[(tenant, request.method, status)] += 1

    async def _route(self, request: Request, tenant: str, uid: str | None) -> Response:
        store = self.store(tenant)
        method = request.method
        if uid is None:
            if method == "GET":
                return self.list_users(request, tenant, store)
            if method == "POST":
                return self.create(request, tenant, store, await self._body(request))
            raise ScimError(405, f"{method} is not supported on /Users")
        profile = store.users.get(uid)
        if profile is None:
            raise ScimError(404, f"User {uid!r} not found")
        if method == "GET":
            view = self._view(request, tenant, profile)
            return self._json(view, headers={"ETag": _etag(profile.version)})
        if method == "PATCH":
            return self.patch(request, tenant, store, profile, await self._body(request))
        if method == "DELETE":
            store.unindex(uid, profile.resource)
            del store.users[uid]
            store.generation += 1
            return Response(status_code=204)
        raise ScimError(405, f"{method} is not supported on /Users/{{id}}")

    # -- operations -------------------------------------------------------------------------

    def list_users(self, request: Request, tenant: str, store: Store) -> Response:
        params = request.query_params
        ids = self._filtered(store, params.get("filter"))
        try:
            start = max(1, int(params.get("startIndex", "1")))
            count = max(0, int(params.get("count", str(len(ids)))))
        except ValueError:
            raise ScimError(400, "startIndex and count must be integers", "invalidValue") from None
        page = ids[start - 1 : start - 1 + count]
        resources = [self._view(request, tenant, store.users[uid]) for uid in page]
        return self._json(
            {
                "schemas": [LIST],
                "totalResults": len(ids),
                "startIndex": start,
                "itemsPerPage": len(resources),
                "Resources": resources,
            }
        )

    @staticmethod
    def _filtered(store: Store, expression: str | None) -> Sequence[str]:
        if not expression:
            return list(store.users)
        match = _FILTER.match(expression)
        if match is None:
            raise ScimError(400, f"unsupported filter: {expression}", "invalidFilter")
        attribute, raw = match.group(1).lower(), match.group(2)
        value = orjson.loads(raw)
        if attribute == "externalid":
            return list(store.by_external_id.get(value, ()))
        if attribute == "username":
            found = store.by_user_name.get(str(value).casefold())
            return [found] if found is not None else []
        if attribute == SYNC_SOURCE:
            return store.managed(str(value))
        raise ScimError(400, f"unsupported filter attribute: {attribute}", "invalidFilter")

    def create(self, request: Request, tenant: str, store: Store, body: dict[str, Any]) -> Response:
        user_name = body.get("userName")
        if not isinstance(user_name, str) or not user_name:
            raise ScimError(400, "userName is required", "invalidValue")
        if user_name.casefold() in store.by_user_name:
            raise ScimError(
                409,
                "One or more of the attribute values are already in use or are reserved",
                "uniqueness",
            )
        uid = uuid.UUID(int=next(self._ids) + (1 << 64)).hex
        resource = {k: v for k, v in copy.deepcopy(body).items() if k not in {"id", "meta"}}
        now = _now()
        resource = {
            "schemas": resource.pop("schemas", [CORE]),
            "id": uid,
            **({"externalId": resource.pop("externalId")} if "externalId" in resource else {}),
            "meta": {"resourceType": "User", "created": now, "lastModified": now},
            **resource,
        }
        _prune(resource)
        profile = Profile(resource)
        store.users[uid] = profile
        store.index(uid, resource)
        store.generation += 1
        view = self._view(request, tenant, profile)
        location = self._location(request, tenant, uid)
        return self._json(view, 201, headers={"ETag": _etag(1), "Location": location})

    def patch(
        self,
        request: Request,
        tenant: str,
        store: Store,
        profile: Profile,
        body: dict[str, Any],
    ) -> Response:
        if_match = request.headers.get("if-match")
        if if_match is not None and if_match not in {"*", _etag(profile.version)}:
            raise ScimError(412, "Failed to update. Resource has changed on the server")
        operations = body.get("Operations")
        if PATCH_OP not in body.get("schemas", []) or not isinstance(operations, list):
            raise ScimError(400, "not a PatchOp", "invalidSyntax")
        before = profile.resource
        after = copy.deepcopy(before)
        for operation in operations:
            if not isinstance(operation, dict):
                raise ScimError(400, "an operation must be an object", "invalidSyntax")
            _apply(after, operation)
        user_name = after.get("userName")
        if not isinstance(user_name, str) or not user_name:
            raise ScimError(400, "userName is required", "invalidValue")
        holder = store.by_user_name.get(user_name.casefold())
        if holder is not None and holder != before["id"]:
            raise ScimError(
                409,
                "One or more of the attribute values are already in use or are reserved",
                "uniqueness",
            )
        comparable = {k: v for k, v in after.items() if k != "meta"}
        if comparable != {k: v for k, v in before.items() if k != "meta"}:
            store.unindex(before["id"], before)
            after["meta"]["lastModified"] = _now()
            profile.resource = after
            profile.version += 1
            store.index(after["id"], after)
            store.generation += 1
        return Response(
            status_code=204, headers={"ETag": _etag(profile.version)}, media_type=SCIM_JSON
        )

    async def stats_view(self, request: Request) -> Response:
        rows = [
            {"tenant": t, "method": m, "status": s, "count": n}
            for (t, m, s), n in sorted(self.stats.items())
        ]
        return self._json(
            {"requests": rows, "tenants": {t: len(s.users) for t, s in self.tenants.items()}}
        )


def create_app(token: str) -> Starlette:
    scim = FastScim(token)
    methods = ["GET", "POST", "PATCH", "DELETE", "PUT"]
    app = Starlette(
        routes=[
            Route("/_fastscim/stats", scim.stats_view, methods=["GET"]),
            Route("/{tenant}/v2/Users", scim.dispatch, methods=methods),
            Route("/{tenant}/v2/Users/{uid}", scim.dispatch, methods=methods),
        ]
    )
    app.state.scim = scim
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators.fastscim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--token", required=True, help="the bearer token every request needs")
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(args.token),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()

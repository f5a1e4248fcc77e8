"""Lucca and Elevo in memory behind one `httpx.MockTransport`, and the service's Resources over
them with a real Redis: what the service and worker unit tests run against.

Both fakes record every request and answer scripted failures first, in order, so a test says
"the next PATCH answers 412" and then counts the requests that followed. Their data comes from
tests/factories.py, so a fake's defaults are Camille Martin's (Lucca id 416).
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from arq.connections import ArqRedis
from arq.jobs import Job as ArqJob
from redis.asyncio.connection import Connection

from app.clients.lucca import LuccaBatch
from app.core import scim
from app.core.profile import profile_from_scim
from app.serialization import job_deserializer
from app.service.context import TenantContext, TenantContexts
from app.service.employee import EmployeeSync
from app.service.resources import Resources
from app.store import keys
from app.store.links import ProfileLinks
from app.store.run_model import RunMode, Trigger, TriggerKind, draft_run
from tests.conftest import Handler, make_settings
from tests.factories import (
    LUCCA_ID,
    MANAGER_LUCCA_ID,
    MANAGER_PROFILE_ID,
    TENANT,
    make_lucca_item,
    make_scim_user,
    make_tenant_config,
)

# The tenant's "today" is factories.TODAY (2025-03-14) in Europe/Paris.
NOW = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
LUCCA_HOST = "127.0.0.1"  # the test settings' LUCCA_URL_TEMPLATE
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"

_FILTER = re.compile(r'(\S+) eq (".*")')


def fixed_clock() -> datetime:
    return NOW


def scim_error(status: int, detail: str = "scripted") -> httpx.Response:
    body = {"schemas": [SCIM_ERROR], "status": str(status), "detail": detail}
    return httpx.Response(status, json=body)


class _Scripted:
    """Requests recorded, and scripted answers given before the fake's own."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._script: list[tuple[str, Handler]] = []

    def script(self, method: str, answer: Handler) -> None:
        """The next `method` request gets `answer(request)` instead of the fake's own."""
        self._script.append((method, answer))

    def fail_next(self, method: str, status: int, *, times: int = 1, **headers: str) -> None:
        for _ in range(times):
            self.script(method, lambda _: httpx.Response(status, json={}, headers=headers))

    def _scripted(self, request: httpx.Request) -> httpx.Response | None:
        self.requests.append(request)
        for index, (method, answer) in enumerate(self._script):
            if method == request.method:
                del self._script[index]
                return answer(request)
        return None


class FakeLucca(_Scripted):
    """`GET /api/v3/users`: by `id=`, else every item paged (`departmentId` filters)."""

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[str, dict[str, Any]] = {}

    def add(self, **overrides: Any) -> dict[str, Any]:
        item = make_lucca_item(**overrides)
        self.items[str(item["id"])] = item
        return item

    def __call__(self, request: httpx.Request) -> httpx.Response:
        scripted = self._scripted(request)
        if scripted is not None:
            return scripted
        params = request.url.params
        if "id" in params:
            wanted = params["id"].split(",")
            items = [self.items[i] for i in wanted if i in self.items]
        else:
            items = list(self.items.values())
            if "departmentId" in params:
                department = int(params["departmentId"])
                items = [i for i in items if (i.get("department") or {}).get("id") == department]
            offset, limit = map(int, params["paging"].split(","))
            items = items[offset : offset + limit]
        return httpx.Response(200, content=orjson.dumps({"data": {"items": items}}))


class FakeElevo(_Scripted):
    """SCIM `/Users`: filtered lists paged by startIndex and count, get, create (409 on a
    taken userName), PATCH with If-Match (412 on a stale version); each write bumps the
    profile's version."""

    def __init__(self) -> None:
        super().__init__()
        self.profiles: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def add(self, **overrides: Any) -> dict[str, Any]:
        resource = make_scim_user(**overrides)
        self.profiles[resource["id"]] = resource
        return resource

    def writes(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method != "GET"]

    def bodies(self, method: str) -> list[Any]:
        return [orjson.loads(r.content) for r in self.requests if r.method == method]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        scripted = self._scripted(request)
        if scripted is not None:
            return scripted
        path = request.url.path.split("/Users", 1)[1].strip("/")
        if not path:
            return self._create(request) if request.method == "POST" else self._list(request)
        resource = self.profiles.get(path)
        if resource is None:
            return scim_error(404, "no such User")
        if request.method == "PATCH":
            return self._patch(request, resource)
        return self._answer(200, resource)

    def _answer(self, status: int, resource: dict[str, Any]) -> httpx.Response:
        return httpx.Response(status, json=resource, headers={"ETag": resource["meta"]["version"]})

    def _list(self, request: httpx.Request) -> httpx.Response:
        found = list(self.profiles.values())
        if "filter" in request.url.params:
            match = _FILTER.fullmatch(request.url.params["filter"])
            assert match is not None, request.url.params["filter"]
            attribute, value = match[1], orjson.loads(match[2])
            found = [r for r in found if _matches(r, attribute, value)]
        first = int(request.url.params.get("startIndex", 1)) - 1  # 1-based, as in SCIM
        count = int(request.url.params.get("count", len(found)))
        page = found[first : first + count]
        body = {"schemas": [scim.LIST_RESPONSE], "totalResults": len(found), "Resources": page}
        return httpx.Response(200, json=body)

    def _create(self, request: httpx.Request) -> httpx.Response:
        resource = orjson.loads(request.content)
        if any(_matches(r, "userName", resource["userName"]) for r in self.profiles.values()):
            return scim_error(409, "userName taken")
        resource["id"] = f"p-{next(self._ids)}"
        resource["meta"] = {"resourceType": "User", "version": 'W/"1"'}
        self.profiles[resource["id"]] = resource
        return self._answer(201, resource)

    def _patch(self, request: httpx.Request, resource: dict[str, Any]) -> httpx.Response:
        version = resource["meta"]["version"]
        if_match = request.headers.get("If-Match")
        if if_match is not None and if_match != version:
            return scim_error(412, "version mismatch")
        for operation in orjson.loads(request.content)["Operations"]:
            _apply(resource, operation)
        resource["meta"]["version"] = f'W/"{int(version[3:-1]) + 1}"'
        return self._answer(200, resource)


def _matches(resource: dict[str, Any], attribute: str, value: str) -> bool:
    profile = profile_from_scim(resource)
    if attribute == "userName":
        return profile.user_name.casefold() == value.casefold()
    if attribute == "externalId":
        return profile.external_id == value
    assert attribute == scim.SYNC_SOURCE, attribute
    return profile.sync_source == value


def _apply(resource: dict[str, Any], operation: dict[str, Any]) -> None:
    """One PatchOp on a plain, dotted or extension path (list filters are not needed here)."""
    path: str = operation["path"]
    container = resource
    if path.startswith("urn:"):
        urn, path = path.rsplit(":", 1)
        container = resource.setdefault(urn, {})
    *parents, name = path.split(".")
    for parent in parents:
        container = container.setdefault(parent, {})
    if operation["op"] == "remove":
        container.pop(name, None)
    else:
        container[name] = operation["value"]


class Upstreams:
    """The one MockTransport handler: Lucca by its host, Elevo otherwise."""

    def __init__(self) -> None:
        self.lucca = FakeLucca()
        self.elevo = FakeElevo()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == LUCCA_HOST:
            return self.lucca(request)
        return self.elevo(request)


# -- the employee use case over the fakes ----------------------------------------------------


def employee(res: Resources, tenant_ctx: TenantContext, **options: Any) -> EmployeeSync:
    """An EmployeeSync reading Lucca straight through the tenant's client (no batching)."""

    async def fetch(user_id: str, *, fresh: bool = False) -> LuccaBatch:
        return await tenant_ctx.lucca.fetch_by_ids([user_id])

    return EmployeeSync(tenant_ctx, res, fetch, **options)


async def new_run(res: Resources, *, dry_run: bool = False) -> str:
    """A run of a user list, asked through the API."""
    draft = draft_run(mode=RunMode.USERS, trigger=Trigger(TriggerKind.API), dry_run=dry_run)
    return await res.runs.create(TENANT, draft)


async def link_manager(res: Resources) -> None:
    """Camille's manager (Lucca 12) has the profile make_scim_user() names as manager."""
    await ProfileLinks(res.redis, TENANT).remember(MANAGER_LUCCA_ID, MANAGER_PROFILE_ID)


async def last_entry(res: Resources, user_id: str = LUCCA_ID) -> dict[str, Any]:
    history = await res.records.history(TENANT, user_id)
    assert history, f"nothing recorded for {user_id}"
    return history[0]


def patch_operations(upstreams: Upstreams) -> list[list[dict[str, Any]]]:
    return [body["Operations"] for body in upstreams.elevo.bodies("PATCH")]


# -- ARQ's queue, read back from Redis ----------------------------------------------------


async def queued(res: Resources) -> dict[str, float]:
    """ARQ's queues (the live one, the runs'): job id -> when it may start (ms since the
    epoch)."""
    found: dict[str, float] = {}
    for name in keys.queues():
        entries = await res.redis.zrange(name, 0, -1, withscores=True)
        found |= {job_id.decode(): score for job_id, score in entries}
    return found


async def queued_job(res: Resources, job_id: str) -> tuple[str, tuple[Any, ...]]:
    info = await ArqJob(job_id, res.redis, _deserializer=job_deserializer).info()
    assert info is not None, f"{job_id} is not queued"
    return info.function, tuple(info.args)


# -- fixtures (re-exported by tests/service/conftest.py and tests/workers/conftest.py) ---------


@pytest.fixture
def upstreams() -> Upstreams:
    return Upstreams()


@pytest.fixture
async def res(
    redis: ArqRedis, upstreams: Upstreams, http_for: Callable[[Handler], httpx.AsyncClient]
) -> AsyncIterator[Resources]:
    """The service's Resources (Resources.create) with their HTTP over `upstreams`, the clock
    at NOW, tenant `acme` stored, and no budget waits unless a test makes one."""
    settings = make_settings(LUCCA_BUDGET_OVERRIDE=100000)
    built = await Resources.create(settings, clock=fixed_clock)
    await built.http.aclose()
    http = http_for(upstreams)
    contexts = TenantContexts(built.tenants, built.releases, settings, http, fixed_clock)
    resources = replace(built, http=http, contexts=contexts)
    await resources.tenants.put(make_tenant_config())
    yield resources
    await resources.redis.aclose()


@pytest.fixture
async def tenant_ctx(res: Resources) -> TenantContext:
    found = await res.contexts.get(TENANT)
    assert found is not None
    return found


class RoundTrips:
    """Redis round trips counted while `counting` is open (a pipeline is one)."""

    def __init__(self) -> None:
        self.sent = 0

    @contextlib.contextmanager
    def counting(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        send = Connection.send_packed_command

        async def counted(connection: Connection, command: Any, check_health: bool = True) -> None:
            self.sent += 1
            await send(connection, command, check_health)

        self.sent = 0
        with monkeypatch.context() as patched:
            patched.setattr(Connection, "send_packed_command", counted)
            yield

"""Redis written by the code of commit 3041211 still reads back, through the HTTP API only.

tests/fixtures/redis-3041211.json is every key that code left after a realistic story (see
tests/fixtures/dump_redis.py). It is loaded as it is into an empty database; the service then
answers from it and a webhook for a known employee updates that employee's existing profile.
Everything here goes through HTTP and a worker, never through the store's modules, so that the
test stays valid however the code that reads those keys is arranged. Expected values come from
the fixture, never from the service's code.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from arq.connections import ArqRedis
from arq.worker import Worker

from app.main import create_app
from app.service.resources import Resources
from simulators import fastscim
from simulators.lucca.app import create_lucca_app
from simulators.lucca.company import Company, Registry
from simulators.lucca.webhooks import WebhookSender
from tests.asgi import asgi_client
from tests.conftest import make_settings
from workers.worker import worker_options

FIXTURE = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "redis-3041211.json").read_text(encoding="utf-8")
)
TENANT = FIXTURE["tenant"]
NAME = TENANT["name"]
STORY = FIXTURE["story"]
RUNS = STORY["runs"]
AUTH = {"Authorization": f"Bearer {FIXTURE['settings']['ADMIN_TOKEN']}"}


def raw(value: Any) -> bytes:
    if isinstance(value, dict):
        return base64.b64decode(value["base64"])
    return str(value).encode()


async def load(redis: ArqRedis, entries: list[dict[str, Any]]) -> None:
    """Write the dumped keys back as they were, TTLs included."""
    for entry in entries:
        key: Any = raw(entry["key"])
        value = entry["value"]
        if entry["type"] == "string":
            await redis.set(key, raw(value))
        elif entry["type"] == "hash":
            await redis.hset(key, mapping={raw(f): raw(v) for f, v in value})
        elif entry["type"] == "list":
            await redis.rpush(key, *[raw(v) for v in value])
        elif entry["type"] == "set":
            await redis.sadd(key, *[raw(v) for v in value])
        elif entry["type"] == "zset":
            await redis.zadd(key, {raw(m): float(s) for m, s in value})
        else:
            raise AssertionError(f"unknown type {entry['type']}")
        if entry["ttl_ms"]:
            await redis.pexpire(key, entry["ttl_ms"])


def redis_value(key: str) -> Any:
    return next(e["value"] for e in FIXTURE["redis"] if e["key"] == key)


class Threaded:
    """A simulator under uvicorn in a thread of its own, on a free port."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            threading.Event().wait(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def registry() -> Registry:
    """Lucca as the story left it: the same company, read back from the fixture."""
    company = Company(TENANT["lucca_subdomain"], TENANT["lucca_api_key"], rate_limit=None)
    company.load(FIXTURE["lucca"]["users"])
    found = Registry(rate_limit=None)
    found.add(company)
    return found


@pytest.fixture(scope="module")
def lucca(registry: Registry) -> Iterator[Threaded]:
    server = Threaded(create_lucca_app(registry))
    yield server
    server.stop()


@pytest.fixture
def elevo() -> Iterator[tuple[Threaded, fastscim.FastScim]]:
    """Elevo holding the profiles the story left, under their ids and versions."""
    app = fastscim.create_app(TENANT["elevo_token"])
    scim: fastscim.FastScim = app.state.scim
    store = scim.store(NAME)
    for profile in FIXTURE["elevo"]:
        resource = profile["resource"]
        store.users[resource["id"]] = fastscim.Profile(resource, profile["version"])
        store.index(resource["id"], resource)
    server = Threaded(app)
    yield server, scim
    server.stop()


@asynccontextmanager
async def service(lucca_port: int) -> AsyncIterator[tuple[httpx.AsyncClient, Resources]]:
    settings = make_settings(
        SECRETS_KEY=FIXTURE["settings"]["SECRETS_KEY"],
        ADMIN_TOKEN=FIXTURE["settings"]["ADMIN_TOKEN"],
        LUCCA_URL_TEMPLATE=f"http://127.0.0.1:{lucca_port}/{{subdomain}}",
        USER_COOLDOWN_SECONDS="0",
        LUCCA_BUDGET_OVERRIDE="100000",
    )
    resources = await Resources.create(settings)
    app = create_app(settings, resources=resources)
    try:
        async with asgi_client(app) as client:
            yield client, resources
    finally:
        await resources.aclose()


@pytest.fixture
async def served(
    redis: ArqRedis, lucca: Threaded
) -> AsyncIterator[tuple[httpx.AsyncClient, Resources]]:
    # ARQ's own keys (queued re-checks, if any) are left out: jobs are not data to read back.
    await load(redis, [e for e in FIXTURE["redis"] if not e["key"].startswith("arq:")])
    async with service(lucca.port) as pair:
        yield pair


@pytest.fixture
def client(served: tuple[httpx.AsyncClient, Resources]) -> httpx.AsyncClient:
    return served[0]


async def get(client: httpx.AsyncClient, path: str) -> Any:
    response = await client.get(path, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_fixture_holds_every_kind_of_state() -> None:
    keys = {e["key"] for e in FIXTURE["redis"]}
    prefix = f"t:{NAME}:"
    for key in (
        "tenants",
        f"tenant:{NAME}:config",
        f"tenant:{TENANT['other']}:config",
        f"{prefix}runs",
        f"{prefix}status",
        f"{prefix}errors",
        f"{prefix}idmap",
        f"{prefix}watermark",
        f"{prefix}gen:{STORY['retitled']}",
        f"{prefix}history:{STORY['retitled']}",
        f"{prefix}event:{STORY['webhook_event']}",
        f"{prefix}run:{RUNS['full']}:users",
        f"{prefix}run:{RUNS['dry']}:plan",
        f"{prefix}run:{RUNS['held']}:suspend",
    ):
        assert key in keys


async def test_tenants_and_their_configs_read_back(client: httpx.AsyncClient) -> None:
    listed = await get(client, "/tenants")
    assert sorted(listed["tenants"]) == sorted([NAME, TENANT["other"]])
    config = await get(client, f"/tenants/{NAME}")
    assert config["lucca"]["subdomain"] == TENANT["lucca_subdomain"]
    assert config["lucca"]["api_key"] == "***"
    assert config["elevo"]["token"] == "***"
    assert TENANT["webhook_secret"] not in json.dumps(config)
    assert config["skip_field"] == TENANT["skip_field"]
    assert config["custom_fields"] == {"cost": "extendedData.e_cost_center"}
    assert config["guard"] == {"max_suspend_ratio": 0, "max_suspend_count": 0}
    assert (await get(client, f"/tenants/{TENANT['other']}"))["lucca"]["api_key"] == "***"


async def test_the_status_shows_the_runs_the_held_guard_and_the_failing_user(
    client: httpx.AsyncClient,
) -> None:
    status = await get(client, f"/sync/{NAME}")
    text = json.dumps(status)
    for run_id in RUNS.values():
        assert run_id in text
    assert status["safety_guard"] == {"holding": True, "run": RUNS["held"], "users": ["119"]}
    assert status["permission_loss"] is None
    failing = status["failing_users"]
    assert failing[STORY["errored"]]["action"] == "error"
    assert "should be a checkbox" in failing[STORY["errored"]]["reason"]
    assert {run["id"] for run in status["runs"]} >= set(RUNS.values())
    assert status["last_event_at"] is not None


async def test_runs_show_their_counts_and_plan(client: httpx.AsyncClient) -> None:
    full = await get(client, f"/sync/{NAME}/runs/{RUNS['full']}")
    assert full["state"] == "done"
    assert full["counts"] == {"create": 11, "conflict": 2, "skipped": 1}
    dry = await get(client, f"/sync/{NAME}/runs/{RUNS['dry']}")
    assert dry["state"] == "done"
    assert dry["dry_run"] is True
    planned = {entry["user"]: entry["action"] for entry in dry["plan"]}
    assert planned[STORY["retitled"]] == "unchanged"
    assert planned[STORY["errored"]] == "error"
    held = await get(client, f"/sync/{NAME}/runs/{RUNS['held']}")
    assert held["state"] == "held"
    users = await get(client, f"/sync/{NAME}/runs/{RUNS['users']}")
    assert users["counts"] == {"error": 1}


async def test_an_employees_history_reads_back(client: httpx.AsyncClient) -> None:
    history = await get(client, f"/sync/{NAME}/users/{STORY['retitled']}")
    text = json.dumps(history)
    assert "Head of Compatibility" in text  # the webhook's update
    for run_id in (RUNS["full"], RUNS["held"]):
        assert run_id in text


async def test_a_webhook_updates_the_profile_the_idmap_names(
    served: tuple[httpx.AsyncClient, Resources],
    registry: Registry,
    elevo: tuple[Threaded, fastscim.FastScim],
) -> None:
    client, resources = served
    server, scim = elevo
    body = {
        "lucca": {"subdomain": TENANT["lucca_subdomain"]},  # its secrets stay as stored
        # A new destination takes its secret again (issue 12).
        "elevo": {
            "scim_url": f"http://127.0.0.1:{server.port}/{NAME}/v2",
            "token": TENANT["elevo_token"],
        },
        "skip_field": TENANT["skip_field"],
        "custom_fields": {"cost": "extendedData.e_cost_center"},
        "guard": {"max_suspend_ratio": 0, "max_suspend_count": 0},
    }
    response = await client.put(f"/tenants/{NAME}", json=body, headers=AUTH)
    assert response.status_code == 200, response.text

    user_id = STORY["retitled"]
    profile_id = dict(redis_value(f"t:{NAME}:idmap"))[user_id]
    company = registry.get(TENANT["lucca_subdomain"])
    assert company is not None
    [event] = company.set_job(int(user_id), job_title="Renamed after the redesign")
    sender = WebhookSender(
        client, f"/webhooks/lucca/{NAME}", TENANT["webhook_secret"], retry_delays=()
    )
    delivery = await sender.send(event)
    assert delivery.attempts[-1].status == 202

    await run_worker_burst(resources)
    stored = scim.store(NAME)
    assert len(stored.users) == len(FIXTURE["elevo"])  # no profile was created
    assert stored.users[profile_id].resource["title"] == "Renamed after the redesign"
    history = json.dumps(await get(client, f"/sync/{NAME}/users/{user_id}"))
    assert "Renamed after the redesign" in history


async def run_worker_burst(resources: Resources) -> None:
    """One worker until the queue is empty, as `arq --burst` runs."""
    options = worker_options(resources.settings) | {"poll_delay": 0.01}
    worker = Worker(
        **options,
        ctx={"resources": resources, "owns_resources": False},
        burst=True,
        handle_signals=False,
    )
    try:
        await asyncio.wait_for(worker.async_run(), 60)
    finally:
        with warnings.catch_warnings():
            # arq's close() calls redis-py's deprecated close(): not this test's business.
            warnings.simplefilter("ignore", DeprecationWarning)
            await worker.close()

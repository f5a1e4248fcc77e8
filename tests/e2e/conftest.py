"""One fixture per real component: scim2-server, the Lucca simulator, the service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from arq.connections import ArqRedis

from simulators.lucca.app import create_lucca_app
from simulators.lucca.company import Registry
from tests.conftest import make_settings
from tests.e2e.harness import ScimServer, Service, ThreadedServer, start_service

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def scim_server() -> Iterator[ScimServer]:
    server = ScimServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def lucca_registry() -> Registry:
    return Registry(rate_limit=None)


@pytest.fixture(scope="session")
def lucca_server(lucca_registry: Registry) -> Iterator[ThreadedServer]:
    server = ThreadedServer(create_lucca_app(lucca_registry))
    yield server
    server.stop()


class FakeClock:
    """The service's clock; tests move it instead of sleeping."""

    def __init__(self) -> None:
        self.offset_seconds = 0.0

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(datetime.now(UTC).timestamp() + self.offset_seconds, UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def service(
    redis: ArqRedis,
    scim_server: ScimServer,
    lucca_server: ThreadedServer,
    lucca_registry: Registry,
    clock: FakeClock,
) -> AsyncIterator[Service]:
    settings = make_settings(
        LUCCA_URL_TEMPLATE=f"http://127.0.0.1:{lucca_server.port}/{{subdomain}}",
        USER_COOLDOWN_SECONDS="0.3",
        LUCCA_BUDGET_OVERRIDE="100000",
    )
    running = await start_service(settings, scim_server.base, lucca_registry, clock)
    await running.start_worker()
    yield running
    await running.stop()

"""One fixture per real component: scim2-server, the Lucca simulator, the service.

scim2-server and the Lucca simulator's server come from `stack/`; the service runs in the
test's event loop so that tests can move its injected clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime

import pytest
from arq.connections import ArqRedis

from simulators.lucca.app import create_lucca_app
from simulators.lucca.company import Registry
from stack.inprocess import ThreadedServer
from tests.conftest import make_settings
from tests.e2e.harness import ScimServer, Service, start_service

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def scim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScimServer]:
    server = ScimServer(tmp_path_factory.mktemp("scim2-server"))
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


ServiceFactory = Callable[..., Awaitable[Service]]


def service_defaults(lucca_server: ThreadedServer) -> dict[str, str]:
    """The settings every e2e service starts with: the Lucca simulator, a short cooldown, the
    budget lifted (tests of the budget set their own), and a short Elevo stall pause:
    scim2-server resets a few connections under load, and five of those in 30 s pause the
    tenant's Elevo calls (10 s by default), which a test of something else would wait out."""
    return {
        "LUCCA_URL_TEMPLATE": f"http://127.0.0.1:{lucca_server.port}/{{subdomain}}",
        "USER_COOLDOWN_SECONDS": "0.3",
        "LUCCA_BUDGET_OVERRIDE": "100000",
        "ELEVO_STALL_PAUSE_SECONDS": "1",
    }


@pytest.fixture
async def service_factory(
    redis: ArqRedis,
    scim_server: ScimServer,
    lucca_server: ThreadedServer,
    lucca_registry: Registry,
    clock: FakeClock,
) -> AsyncIterator[ServiceFactory]:
    """Start a service with settings of the test's own (environment overrides)."""
    started: list[Service] = []

    async def start(**env: str) -> Service:
        settings = make_settings(**(service_defaults(lucca_server) | env))
        running = await start_service(settings, scim_server.base, lucca_registry, clock)
        await running.start_worker()
        started.append(running)
        return running

    yield start
    for running in started:
        await running.stop()


@pytest.fixture
async def service(service_factory: ServiceFactory) -> Service:
    """The service with the Lucca budget lifted and a short per-user cooldown."""
    return await service_factory()

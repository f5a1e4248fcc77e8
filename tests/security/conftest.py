"""Fixtures of the security tests: the app in-process with two tenants, acme and beta."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis

from tests.conftest import make_settings

# The end-to-end components, exactly as tests/e2e starts them (scim2-server, the Lucca
# simulator, the service's web app under uvicorn and an ARQ worker): every fixture of its
# conftest, whatever it grows.
from tests.e2e.conftest import *  # noqa: F403
from tests.security.support import ACME_BODY, BETA_BODY, Served, serve


@pytest.fixture
async def served(redis: ArqRedis) -> AsyncIterator[Served]:
    """The app with tenants acme (two webhook secrets: rotation) and beta."""
    async with serve(make_settings(ALLOW_HTTP_ELEVO="false")) as app:
        await register_tenants(app)
        yield app


async def register_tenants(app: Served) -> None:
    for name, body in (("acme", ACME_BODY), ("beta", BETA_BODY)):
        response = await app.put_tenant(name, body)
        assert response.status_code == 201, response.text

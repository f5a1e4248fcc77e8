"""The web app in the test's event loop over `httpx.ASGITransport`, its lifespan run as a
server runs it (ASGITransport sends no lifespan events)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send


@asynccontextmanager
async def asgi_client(
    app: Starlette, *, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app`; with `raise_app_exceptions=False` an unhandled error is the 500 a
    server sends."""
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://sync") as client:
            yield client

"""The web process: `uvicorn --factory app.main:create_app`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from app.api.errors import EXCEPTION_HANDLERS, ApiError, error_response
from app.api.limits import BodyGuard
from app.api.routes import (
    access,
    health,
    lucca_webhook,
    metrics,
    openapi,
    sync,
    tenants,
    webhooks,
)
from app.console.routes import mount as console
from app.logs import configure_logging
from app.service.context import Clock, system_clock
from app.service.resources import Resources
from app.settings import Settings

log = logging.getLogger(__name__)


async def _redis_down(request: Request, exc: Exception) -> Response:
    log.warning("redis unavailable while serving %s", request.url.path)
    return error_response(ApiError.unavailable())


def create_app(
    settings: Settings | None = None,
    *,
    resources: Resources | None = None,
    clock: Clock = system_clock,
) -> Starlette:
    """Build the app; settings come from the environment unless given (tests give them)."""
    settings = settings or Settings.from_env()
    if resources is None:
        configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Resources]]:
        if resources is not None:
            yield {"resources": resources}
            return
        built = await Resources.create(settings, clock=clock)
        try:
            yield {"resources": built}
        finally:
            await built.aclose()

    return Starlette(
        routes=[
            *health.routes,
            *metrics.routes,
            *tenants.routes,
            *access.routes,
            *lucca_webhook.routes,
            *webhooks.routes,
            *sync.routes,
            *openapi.routes,
            console,
        ],
        lifespan=lifespan,
        exception_handlers={**EXCEPTION_HANDLERS, RedisError: _redis_down},
        middleware=[
            Middleware(BodyGuard, read_timeout=settings.request_body_timeout_seconds),
        ],
    )

"""`GET /metrics`: Prometheus text format, behind the admin bearer (its labels name tenants)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.auth import require_admin
from app.metrics import QUEUE_DEPTH
from app.routes.common import resources_of


async def metrics(request: Request) -> Response:
    require_admin(request, resources_of(request).settings.admin_token)
    try:
        QUEUE_DEPTH.labels("arq:queue").set(await resources_of(request).redis.zcard("arq:queue"))
    except RedisError:
        QUEUE_DEPTH.labels("arq:queue").set(float("nan"))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics)]

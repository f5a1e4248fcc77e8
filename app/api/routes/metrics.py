"""`GET /metrics`: Prometheus text format, behind the admin bearer (its labels name tenants)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.auth import guarded, resources_of
from app.metrics import QUEUE_DEPTH
from app.service.access import Action
from app.service.health import queue_depth, queue_name


@guarded(Action.METRICS)
async def metrics(request: Request) -> Response:
    QUEUE_DEPTH.labels(queue_name()).set(await queue_depth(resources_of(request)))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics)]

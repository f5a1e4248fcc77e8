"""`GET /metrics`: Prometheus text format, behind the admin bearer (its labels name tenants)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.auth import guarded, resources_of
from app.metrics import QUEUE_DEPTH
from app.service.access import Action
from app.service.health import queue_depths


@guarded(Action.METRICS)
async def metrics(request: Request) -> Response:
    for name, depth in (await queue_depths(resources_of(request))).items():
        QUEUE_DEPTH.labels(name).set(depth)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics)]

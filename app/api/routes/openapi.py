"""`GET /openapi.json`: the service's OpenAPI 3.1 description (app/api/openapi.py)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.openapi import openapi_document


async def openapi(request: Request) -> Response:
    return Response(orjson.dumps(openapi_document()), media_type="application/json")


routes = [Route("/openapi.json", openapi, methods=["GET"])]

"""The webhook anchor: the least a receiver can do. Check an HMAC, enqueue one ARQ job, 202.

Run like the service's web line, so the two differ only by what the endpoint does:

    REDIS_URL=redis://127.0.0.1:6390/0 ANCHOR_SECRET=s \
        uvicorn --factory bench.anchor_app:create_app --port 8001 --no-access-log
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import orjson
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def create_app() -> Starlette:
    secret = os.environ["ANCHOR_SECRET"].encode()
    settings = RedisSettings.from_dsn(os.environ["REDIS_URL"])
    pool: dict[str, ArqRedis] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool["redis"] = await create_pool(
            settings,
            job_serializer=partial(orjson.dumps, default=repr),
            job_deserializer=orjson.loads,
        )
        yield
        await pool["redis"].aclose()

    async def receive(request: Request) -> Response:
        body = await request.body()
        timestamp = request.headers.get("lucca-timestamp", "").encode()
        given = request.headers.get("lucca-signature", "").encode()
        mac = hmac.new(secret, timestamp + b"." + body, hashlib.sha256).digest()
        if not hmac.compare_digest(base64.b64encode(mac), given):
            return JSONResponse({"error": "bad_signature"}, status_code=401)
        event = orjson.loads(body)
        user_id = str(event["data"]["id"])
        await pool["redis"].enqueue_job("sync_user", request.path_params["tenant"], user_id)
        return JSONResponse({"status": "queued"}, status_code=202)

    return Starlette(
        routes=[Route("/webhooks/lucca/{tenant}", receive, methods=["POST"])],
        lifespan=lifespan,
    )

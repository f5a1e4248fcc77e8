"""The worker anchor: a bare ARQ job doing the two HTTP calls a changed user needs.

One Lucca GET by id, one SCIM PATCH of the first name; the same ARQ options (max_jobs,
poll_delay) and httpx limits as the service's worker, nothing else: no lock, no records, no
budget, no read of the Elevo profile. A transport error or an error status is retried after
0.5 s (ARQ Retry), so that scim2-server's dropped connections lose no change.

    REDIS_URL=... ANCHOR_LUCCA_URL=http://127.0.0.1:8081/acme ANCHOR_LUCCA_KEY=... \
    ANCHOR_SCIM_URL=http://127.0.0.1:8090/acme/v2 ANCHOR_SCIM_TOKEN=... \
        arq bench.anchor_worker.WorkerSettings
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any

import httpx
import orjson
from arq import Retry
from arq.connections import RedisSettings

from app.core.lucca_user import projection

DONE_KEY = "anchor:done"


async def startup(ctx: dict[Any, Any]) -> None:
    ctx["http"] = httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, connect=5.0),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
    )
    ctx["fields"] = projection(())


async def shutdown(ctx: dict[Any, Any]) -> None:
    await ctx["http"].aclose()


async def anchor_sync(ctx: dict[Any, Any], user_id: str, scim_id: str) -> str:
    try:
        await _sync(ctx, user_id, scim_id)
    except httpx.HTTPError as exc:  # as the service does: try again (scim2-server drops some)
        raise Retry(defer=0.5) from exc
    await ctx["redis"].incr(DONE_KEY)
    return "ok"


async def _sync(ctx: dict[Any, Any], user_id: str, scim_id: str) -> None:
    http: httpx.AsyncClient = ctx["http"]
    lucca = await http.get(
        f"{os.environ['ANCHOR_LUCCA_URL']}/api/v3/users",
        params={
            "id": user_id,
            "formerEmployees": "true",
            "fields": ctx["fields"],
            "paging": "0,1000",
        },
        headers={"Authorization": f"lucca application={os.environ['ANCHOR_LUCCA_KEY']}"},
    )
    lucca.raise_for_status()
    item = orjson.loads(lucca.content)["data"]["items"][0]
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "name.givenName", "value": item["firstName"]}],
    }
    elevo = await http.patch(
        f"{os.environ['ANCHOR_SCIM_URL']}/Users/{scim_id}",
        content=orjson.dumps(patch),
        headers={
            "Authorization": f"Bearer {os.environ['ANCHOR_SCIM_TOKEN']}",
            "Content-Type": "application/scim+json",
        },
    )
    elevo.raise_for_status()


class WorkerSettings:
    functions = [anchor_sync]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(os.environ.get("REDIS_URL", "redis://127.0.0.1/0"))
    job_serializer = partial(orjson.dumps, default=repr)
    job_deserializer = orjson.loads
    max_jobs = int(os.environ.get("WORKER_MAX_JOBS", "200"))
    poll_delay = float(os.environ.get("WORKER_POLL_DELAY_SECONDS", "0.05"))
    keep_result = 60

"""The process-wide resources, built once at start-up and shared by the web app and the worker."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from app.crypto import SecretBox
from app.serialization import job_deserializer, job_serializer
from app.settings import Settings
from app.sync.batcher import LuccaBatcher
from app.sync.budget import LuccaBudget
from app.sync.context import Clock, TenantContexts, system_clock
from app.sync.lucca_cache import LuccaReadCache
from app.sync.records import Records
from app.tenant_store import TenantStore

log = logging.getLogger(__name__)

__all__ = ["Resources", "job_deserializer", "job_serializer", "redis_settings"]


def redis_settings(settings: Settings) -> RedisSettings:
    return RedisSettings.from_dsn(settings.redis_url)


def new_http_client(settings: Settings) -> httpx.AsyncClient:
    # No redirects and no proxy variables: a tenant's URL must not lead anywhere else.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.http_timeout_seconds, connect=5.0),
        follow_redirects=False,
        trust_env=False,
        # Idle connections close before the usual 5 s server keep-alive does: reusing one the
        # server is closing fails a request (a POST cannot be retried blindly).
        limits=httpx.Limits(
            max_connections=200, max_keepalive_connections=100, keepalive_expiry=2.0
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    settings: Settings
    redis: ArqRedis
    http: httpx.AsyncClient
    box: SecretBox
    tenants: TenantStore
    contexts: TenantContexts
    records: Records
    budget: LuccaBudget
    batcher: LuccaBatcher
    clock: Clock

    @classmethod
    async def create(cls, settings: Settings, *, clock: Clock = system_clock) -> Resources:
        box = SecretBox(settings.secrets_keys)  # first: a bad key fails before any connection
        redis = await create_pool(
            redis_settings(settings),
            job_serializer=job_serializer,
            job_deserializer=job_deserializer,
        )
        await warn_on_volatile_redis(redis)
        http = new_http_client(settings)
        tenants = TenantStore(redis, box)
        budget = LuccaBudget(redis, override=settings.lucca_budget_override)
        return cls(
            settings=settings,
            redis=redis,
            http=http,
            box=box,
            tenants=tenants,
            contexts=TenantContexts(tenants, settings, http, clock),
            records=Records(redis, settings.run_retention_seconds),
            budget=budget,
            batcher=LuccaBatcher(
                budget, LuccaReadCache(redis), window=settings.lucca_batch_window_seconds
            ),
            clock=clock,
        )

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.redis.aclose()


async def warn_on_volatile_redis(redis: ArqRedis) -> None:
    """Production Redis must persist and never evict (service.md); say so when it does not."""
    try:
        persistence = await redis.info("persistence")
        memory = await redis.config_get("maxmemory-policy")
    except Exception:  # CONFIG may be disabled on managed Redis: nothing to check then.
        log.info("redis configuration not readable; persistence not checked")
        return
    if not persistence.get("aof_enabled"):
        log.warning("redis runs without appendonly: a restart may lose queued work")
    policy = memory.get("maxmemory-policy", "noeviction")
    if policy != "noeviction":
        log.warning("redis maxmemory-policy is %s, not noeviction: jobs may be evicted", policy)

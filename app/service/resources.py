"""The process-wide resources, built once at start-up and shared by the web app and the worker."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from app.clients.http import new_http_client
from app.crypto import SecretBox
from app.serialization import job_deserializer, job_serializer
from app.service.batcher import LuccaBatcher
from app.service.context import Clock, TenantContexts, system_clock
from app.settings import Settings
from app.store.budget import LuccaBudget
from app.store.failures import Failures
from app.store.locks import FullRunLock
from app.store.pool import unlock_pool
from app.store.read_cache import LuccaReadCache
from app.store.records import Records
from app.store.runs import RunStore
from app.store.tenants import TenantStore

log = logging.getLogger(__name__)


def redis_settings(settings: Settings) -> RedisSettings:
    return RedisSettings.from_dsn(settings.redis_url)


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    settings: Settings
    redis: ArqRedis
    http: httpx.AsyncClient
    box: SecretBox
    tenants: TenantStore
    contexts: TenantContexts
    records: Records
    runs: RunStore
    failures: Failures
    full_run_lock: FullRunLock
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
        await unlock_pool(redis)  # the jobs' commands, not queued on one lock
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
            runs=RunStore(redis, settings.run_retention_seconds),
            failures=Failures(redis),
            full_run_lock=FullRunLock(redis),
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

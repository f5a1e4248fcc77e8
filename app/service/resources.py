"""The process-wide resources, built once at start-up and shared by the web app and the worker."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import httpx
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from app.clients.egress import Resolver, system_resolver
from app.clients.http import new_http_client
from app.crypto import SecretBox
from app.serialization import job_deserializer, job_serializer
from app.service.batcher import LuccaBatcher
from app.service.context import Clock, TenantContexts, system_clock
from app.settings import Settings
from app.store.access_tokens import AccessTokens
from app.store.alerts import AlertStates
from app.store.audit import AuditLog
from app.store.budget import BudgetWindow, ElevoPause, LuccaBudget
from app.store.failures import Failures
from app.store.locks import FullRunLock
from app.store.pool import unlock_pool
from app.store.read_cache import LuccaReadCache
from app.store.records import Records
from app.store.release import ReleaseMarks
from app.store.runs import RunStore
from app.store.tenants import TenantStore

log = logging.getLogger(__name__)


def redis_settings(settings: Settings) -> RedisSettings:
    """REDIS_URL's server; with sentinels, the master they name, reached with the URL's
    database, user, password and TLS (arq and `arq --check` ask the sentinels where it is)."""
    plain = RedisSettings.from_dsn(settings.redis_url)
    if not settings.redis_sentinels:
        return plain
    return dataclasses.replace(
        plain,
        host=list(settings.redis_sentinels),
        sentinel=True,
        sentinel_master=settings.redis_sentinel_master,
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
    releases: ReleaseMarks
    alerts: AlertStates
    runs: RunStore
    failures: Failures
    full_run_lock: FullRunLock
    budget: LuccaBudget
    elevo_pause: ElevoPause
    batcher: LuccaBatcher
    access_tokens: AccessTokens
    audit: AuditLog
    clock: Clock
    # Host -> addresses, for every outbound connection and the PUT-time check (tests inject it).
    resolver: Resolver

    @classmethod
    async def create(
        cls,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        resolver: Resolver = system_resolver,
    ) -> Resources:
        box = SecretBox(settings.secrets_keys)  # first: a bad key fails before any connection
        redis = await create_pool(
            redis_settings(settings),
            job_serializer=job_serializer,
            job_deserializer=job_deserializer,
        )
        await unlock_pool(redis)  # the jobs' commands, not queued on one lock
        await warn_on_volatile_redis(redis)
        http = new_http_client(settings, resolver)
        tenants = TenantStore(redis, box)
        window = BudgetWindow(
            seconds=settings.lucca_budget_window_seconds,
            margin=settings.lucca_budget_margin_seconds,
            live_reserve=settings.lucca_live_reserve,
        )
        budget = LuccaBudget(redis, window=window, override=settings.lucca_budget_override)
        releases = ReleaseMarks(redis)
        return cls(
            settings=settings,
            redis=redis,
            http=http,
            box=box,
            tenants=tenants,
            contexts=TenantContexts(tenants, releases, settings, http, clock),
            records=Records(redis, settings.run_retention_seconds),
            releases=releases,
            alerts=AlertStates(redis),
            runs=RunStore(
                redis, settings.run_retention_seconds, settings.webhook_run_retention_seconds
            ),
            failures=Failures(redis),
            full_run_lock=FullRunLock(redis),
            budget=budget,
            elevo_pause=ElevoPause(redis),
            batcher=LuccaBatcher(
                budget,
                LuccaReadCache(redis),
                window=settings.lucca_batch_window_seconds,
                hold=settings.lucca_batch_hold_seconds,
                busy_window=settings.lucca_batch_busy_window_seconds,
            ),
            access_tokens=AccessTokens(redis),
            audit=AuditLog(redis, settings.run_retention_seconds),
            clock=clock,
            resolver=resolver,
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

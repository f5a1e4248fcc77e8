"""A tenant's clients and clock, built from its stored config and cached per process."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import httpx

from app.clients.elevo import ElevoClient, ElevoSlots, validate_scim_url
from app.clients.lucca import LuccaClient, lucca_base_url
from app.core.lucca_user import projection
from app.core.tenant import TenantConfig
from app.metrics import elevo_hook, lucca_hook
from app.settings import Settings
from app.store.release import ReleaseMarks
from app.store.tenants import TenantStore

Clock = Callable[[], datetime]
# How long a process may go on with a tenant's config after it changed.
CONTEXT_TTL_SECONDS = 5.0


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class TenantContext:
    config: TenantConfig
    lucca: LuccaClient
    elevo: ElevoClient
    clock: Clock
    # A release runs, or gave up (app/service/release.py): nothing but the release may write.
    disconnecting: bool = False

    @property
    def tenant(self) -> str:
        return self.config.tenant

    def now_local(self) -> datetime:
        return self.clock().astimezone(ZoneInfo(self.config.timezone))

    def today(self) -> date:
        return self.now_local().date()


def build_context(
    config: TenantConfig,
    settings: Settings,
    http: httpx.AsyncClient,
    clock: Clock,
    *,
    disconnecting: bool = False,
    elevo_slots: ElevoSlots | None = None,
) -> TenantContext:
    lucca = LuccaClient(
        http,
        lucca_base_url(settings.lucca_url_template, config.lucca_subdomain, config.lucca_domain),
        config.lucca_api_key,
        fields=projection(config.custom_fields.values()),
        skip_field=config.skip_field,
        on_response=lucca_hook(config.tenant),
    )
    elevo = ElevoClient(
        http,
        validate_scim_url(config.elevo_scim_url, allow_http=settings.allow_http_elevo),
        config.elevo_token,
        on_response=elevo_hook(config.tenant),
        slots=elevo_slots,
    )
    return TenantContext(
        config=config, lucca=lucca, elevo=elevo, clock=clock, disconnecting=disconnecting
    )


class TenantContexts:
    """Contexts by tenant; a config change reaches a running process within `ttl` seconds."""

    def __init__(
        self,
        store: TenantStore,
        marks: ReleaseMarks,
        settings: Settings,
        http: httpx.AsyncClient,
        clock: Clock = system_clock,
        ttl: float = CONTEXT_TTL_SECONDS,
    ) -> None:
        self._store = store
        self._marks = marks
        self._settings = settings
        self._http = http
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[str, tuple[float, TenantContext | None]] = {}
        # Outlive the contexts (rebuilt every `ttl`): one bound per customer's Elevo.
        self._elevo_slots: dict[str, ElevoSlots] = {}

    async def get(self, tenant: str) -> TenantContext | None:
        cached = self._cache.get(tenant)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        config = await self._store.get(tenant)
        tenant_ctx = None
        if config is not None:
            disconnecting = await self._marks.get(tenant) is not None
            slots = self._elevo_slots.get(tenant)
            if slots is None:
                slots = self._elevo_slots[tenant] = ElevoSlots(self._settings.elevo_concurrency)
            tenant_ctx = build_context(
                config,
                self._settings,
                self._http,
                self._clock,
                disconnecting=disconnecting,
                elevo_slots=slots,
            )
        self._cache[tenant] = (time.monotonic(), tenant_ctx)
        return tenant_ctx

    def forget(self, tenant: str) -> None:
        """Read the config again at the next use; a changed one (another Elevo, maybe) starts
        with fresh slots. A pause in Redis still holds every process (app/service/pacing.py)."""
        self._cache.pop(tenant, None)
        self._elevo_slots.pop(tenant, None)

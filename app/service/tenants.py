"""The tenant admin use cases behind PUT/GET/DELETE /tenants/{tenant} and GET /tenants."""

from __future__ import annotations

import logging

from app.core.tenant import TenantConfig
from app.schemas.tenant_update import TenantUpdate
from app.service import audit
from app.service.access import Action, Principal
from app.service.blocks import credentials_replaced
from app.service.destinations import check_destinations
from app.service.errors import Forbidden, TenantUnreadable
from app.service.lucca_webhook import schedule_registration
from app.service.resources import Resources
from app.service.runs import purge_tenant_state
from app.service.skip_field import start_afresh
from app.store.tenants import TenantStoreError

log = logging.getLogger(__name__)


async def get_tenant(res: Resources, tenant: str) -> TenantConfig | None:
    """The tenant's config, None for no such tenant; TenantUnreadable when it does not decrypt."""
    try:
        return await res.tenants.get(tenant)
    except TenantStoreError as exc:
        raise TenantUnreadable(str(exc)) from None


async def replaceable_config(res: Resources, tenant: str) -> TenantConfig | None:
    """The config a PUT body updates; an unreadable one counts as none."""
    try:
        return await res.tenants.get(tenant)
    except TenantStoreError as exc:
        # A body with every secret may still replace an unreadable config (the way out).
        log.warning("replacing an unreadable tenant config: %s", exc)
        return None


async def configure_tenant(res: Resources, update: TenantUpdate, *, by: Principal) -> bool:
    """A PUT by `by`; True when the tenant is new. Changing a secret or a destination (where a
    secret is sent) takes the admin: Forbidden otherwise, naming the first such setting."""
    tenant = update.config.tenant
    guarded = update.guarded
    if guarded and not by.allows(Action.CONFIGURE_SECRETS, tenant):
        raise Forbidden(
            f"a {by.scope} token may not change `{guarded[0]}`: secrets and destinations take"
            " the admin token"
        )
    created = await put_tenant(res, update.config)
    await schedule_registration(res, update.config)
    if created:
        await audit.record(res, tenant, audit.AuditAction.CREATE, by=by.name)
    else:
        await audit.record(
            res, tenant, audit.AuditAction.CONFIGURE, by=by.name, changed=list(update.changed)
        )
    return created


async def put_tenant(res: Resources, config: TenantConfig) -> bool:
    """Store the config; True when the tenant is new. `InvalidDocument` (a 400 naming
    the URL) when its SCIM or alerts host resolves to an address the egress policy refuses.

    The credentials' flags are cleared for the new credentials to prove themselves: the
    employees that waited for them are queued again, and a tenant whose Lucca key had been
    refused catches up on what the sync missed meanwhile. A permission loss is no credential's:
    it stays, unless the skip field's code changes, which starts the sync's memory of that field
    afresh (sync-rules.md).
    """
    await check_destinations(res, config)
    tenant = config.tenant
    previous = await replaceable_config(res, tenant)
    created = await res.tenants.put(config)
    # This process may have cached the old config, or the tenant's absence.
    res.contexts.forget(tenant)
    if previous is None or previous.skip_field != config.skip_field:
        await start_afresh(res, tenant)
    # A tenant being released starts nothing: its runs are refused while it disconnects.
    if await res.releases.get(tenant) is None:
        await credentials_replaced(res, tenant)
    return created


async def delete_tenant(res: Resources, tenant: str, *, by: str) -> bool:
    """Forget the tenant and purge its sync state and tokens; False when there was no such
    tenant. The audit list outlives it."""
    if not await res.tenants.delete(tenant):
        return False
    res.contexts.forget(tenant)
    await purge_tenant_state(res, tenant)
    await audit.record(res, tenant, audit.AuditAction.DELETE, by=by)
    await res.releases.clear(tenant)  # a release that runs stops at its next page
    return True


async def list_tenants(res: Resources) -> list[str]:
    return await res.tenants.list()

"""The skip field when Lucca leaves it out (sync-rules.md, "Absent means unticked" and
"Permission loss").

Lucca leaves a never-set field out of `extendedData`, so on every read an absent skip field is
"not excluded", except for an employee last seen excluded: that one is held until a complete
listing decides. Permission loss is judged only on a complete listing, against the tenant's
previous one; the flag lifts only by a listing that sees the field again, or by an operator who
accepts the loss. Changing the tenant's `skip_field` starts afresh.
"""

from __future__ import annotations

import logging

from app.core.decision import Action, Decision
from app.service.context import TenantContext
from app.service.outcomes import record_decision
from app.service.resources import Resources
from app.service.waiting import UNBLOCKED, Reason, release
from app.store.parked import ProbeBackoff
from app.store.run_model import RunState
from app.store.skip_field import SkipFieldMemory

log = logging.getLogger(__name__)

HELD_REASON = (
    "last seen excluded, and the skip field is no longer shown: held until a complete listing"
    " shows whether the API key still sees it"
)


def permission_loss_message(code: str) -> str:
    return (
        f"no employee shows the skip field {code} any more while the previous full run showed it"
        " (the API key may have lost that HR-file section): the employees last seen excluded are"
        " held until a full run sees it again, or until the loss is accepted"
        ' (POST /sync/{tenant} {"accept_skip_field_loss": true})'
    )


def never_seen_message(code: str) -> str:
    return (
        f"no employee shows the skip field {code}: nobody is excluded; if some should be, the"
        " tenant's skip_field code may be wrong"
    )


async def field_expected(res: Resources, tenant: str) -> bool:
    """True when the tenant's last complete listing showed the skip field on someone: a listing
    must then see it too before it changes anyone."""
    return (await SkipFieldMemory(res.redis, tenant).last_listing() or 0) > 0


async def is_permission_loss(res: Resources, tenant: str, *, listed: int, shown: int) -> bool:
    """A complete listing of `listed` items showed the skip field on `shown`, while the tenant's
    previous one showed it on someone. An empty Lucca proves nothing (the safety guard speaks)."""
    return listed > 0 and shown == 0 and await field_expected(res, tenant)


async def remember_listing(
    res: Resources, tenant_ctx: TenantContext, *, listed: int, shown: int, loss: bool
) -> None:
    """Remember what a complete listing showed and set the tenant's flags accordingly."""
    if listed == 0:
        return
    tenant, code = tenant_ctx.tenant, tenant_ctx.config.skip_field
    await SkipFieldMemory(res.redis, tenant).note_listing(shown)
    if loss:
        log.warning("tenant=%s skip field %s shown on nobody: permission loss", tenant, code)
        await res.records.note(
            tenant, permission_loss=permission_loss_message(code), skip_field_warning=""
        )
    elif shown:
        await res.records.note(tenant, permission_loss="", skip_field_warning="")
    elif not (await res.records.notes(tenant)).get("permission_loss"):
        await res.records.note(tenant, skip_field_warning=never_seen_message(code))
    if not loss:
        await listing_decided(res, tenant)


async def listing_decided(res: Resources, tenant: str) -> None:
    """A complete listing ended without a permission loss: who was held on one read since (an
    absent field, last seen excluded) waits no more ("nothing waits for ever"). The listing
    noted what it saw of each employee, so their syncs now decide by it."""
    await ProbeBackoff(res.redis, tenant, Reason.SKIP_FIELD.value).reset()
    await release(res, tenant, Reason.SKIP_FIELD, trigger=UNBLOCKED)


async def start_afresh(res: Resources, tenant: str) -> None:
    """Forget what the sync knew of the skip field: its code changed, or an operator accepted
    its loss (the customer removed the checkbox on purpose)."""
    await SkipFieldMemory(res.redis, tenant).forget()
    await res.records.note(tenant, permission_loss="", skip_field_warning="")
    # Nobody is last seen excluded any more: who waited for the field syncs as anyone else.
    await release(res, tenant, Reason.SKIP_FIELD, trigger=UNBLOCKED, config_changed=True)


async def hold_for_permission_loss(
    res: Resources, tenant_ctx: TenantContext, run_id: str, listed: set[str], *, dry_run: bool
) -> str:
    """The complete listing shows the skip field on nobody while the last one showed it: the run
    creates, changes and suspends nobody, and the employees last seen excluded say why."""
    tenant = tenant_ctx.tenant
    ids = sorted(listed, key=int)
    excluded = await SkipFieldMemory(res.redis, tenant).excluded_among(ids)
    for user_id in sorted(excluded, key=int):
        await record_decision(
            res.records,
            res.runs,
            tenant,
            Decision(user_id, Action.HELD, HELD_REASON),
            run_id=run_id,
            written=False,
            dry_run=dry_run,
        )
    waiting = f"permission loss: {len(ids)} listed users wait for a full run showing the field"
    await res.runs.set_state(tenant, run_id, RunState.HELD, waiting=waiting)
    if not dry_run:  # last: a step re-run after a crash judges the same listing the same way
        await remember_listing(res, tenant_ctx, listed=len(ids), shown=0, loss=True)
    return "held"

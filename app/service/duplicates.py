"""Creations whose answer was lost, and the second profile one of them may leave.

A creation is marked before it is sent and unmarked once Elevo answers; a timeout, a reset
or a cancelled job leaves the mark, and the employee's syncs then ask Elevo by externalId
whatever the snapshot or the id map say. If Elevo applied the lost creation after the retry
had created the profile (under another userName, the email having changed meanwhile), that
lookup finds two profiles for one employee.

The older profile stays the employee's. The later one, if the sync created it, loses its
`externalId` and `syncSource` and is suspended: never deleted (someone may have written in
it), and outside the safety guard (no employee leaves). The employee's history and the
tenant's status say which profile went.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from app.clients.elevo import ElevoClient
from app.clients.errors import ElevoConflict, ElevoError
from app.core import scim
from app.core.decision import Action, Decision
from app.core.profile import ElevoProfile
from app.service.context import TenantContext
from app.service.resources import Resources
from app.store.links import ProfileLinks
from app.store.run_model import utcnow_iso

log = logging.getLogger(__name__)

# Unlinked and suspended: the sync neither finds nor writes it again.
RETIRE_OPERATIONS = (
    {"op": "remove", "path": "externalId"},
    {"op": "remove", "path": scim.SYNC_SOURCE},
    {"op": "replace", "path": scim.ACTIVE, "value": False},
)


async def create_marked(
    links: ProfileLinks, elevo: ElevoClient, user_id: str, resource: Mapping[str, Any]
) -> ElevoProfile:
    """POST the profile, marked as unsure until Elevo answers (an earlier mark stays)."""
    first = await links.begin_create(user_id)
    try:
        created = await elevo.create(resource)
    except ElevoError as exc:
        if first and exc.status is not None and 400 <= exc.status < 500:
            await links.end_create(user_id)  # refused by Elevo itself: nothing was created
        raise
    if first:
        await links.end_create(user_id)
    return created


def _age(profile: ElevoProfile) -> tuple[datetime, str]:
    """Oldest first; a profile whose creation time Elevo does not tell counts as newest."""
    created = datetime.max.replace(tzinfo=UTC)
    if profile.created:
        with contextlib.suppress(ValueError):
            created = datetime.fromisoformat(profile.created)
    if created.tzinfo is None:  # no zone said: UTC, as SCIM servers write it
        created = created.replace(tzinfo=UTC)
    return created, profile.id


async def keep_oldest(
    res: Resources,
    tenant_ctx: TenantContext,
    user_id: str,
    *,
    run_id: str | None,
    dry_run: bool,
) -> ElevoProfile | None:
    """The employee's one profile, retiring the later ones the sync created; a profile the
    sync did not create is never touched (a conflict, for a person to settle)."""
    profiles = await tenant_ctx.elevo.find_all_by_external_id(user_id)
    if len(profiles) < 2:
        return profiles[0] if profiles else None
    keep, *later = sorted(profiles, key=_age)
    foreign = [profile.id for profile in later if not profile.managed]
    if foreign:
        raise ElevoConflict(
            f"profiles {', '.join(foreign)} also carry externalId {user_id} and were not"
            f" created by the sync; profile {keep.id} is the oldest"
        )
    if not dry_run:  # a plan writes nothing
        for duplicate in later:
            await _retire(res, tenant_ctx, user_id, keep, duplicate, run_id)
    return keep


async def _retire(
    res: Resources,
    tenant_ctx: TenantContext,
    user_id: str,
    keep: ElevoProfile,
    duplicate: ElevoProfile,
    run_id: str | None,
) -> None:
    tenant = tenant_ctx.tenant
    await tenant_ctx.elevo.patch(duplicate.id, list(RETIRE_OPERATIONS))
    reason = (
        f"a second profile {duplicate.id} ({duplicate.user_name}) was linked to this employee,"
        f" left by a creation whose answer was lost: unlinked and suspended; profile"
        f" {keep.id} ({keep.user_name}) is kept"
    )
    decision = Decision(user_id, Action.SUSPEND, reason, profile_id=duplicate.id)
    at = utcnow_iso()
    entry = decision.plan_entry() | {
        "at": at,
        "run": run_id,
        "written": True,
        "dry_run": False,
        "kept_profile": keep.id,
        "retired_profile": duplicate.id,
    }
    # Not counted in the run: no employee left, so the safety guard does not weigh it.
    await res.records.add(tenant, user_id, entry, failing=None)
    await res.records.note_duplicate(
        tenant, {"user": user_id, "kept": keep.id, "suspended": duplicate.id, "at": at}
    )
    log.warning("tenant=%s user=%s %s", tenant, user_id, reason)

"""The per-employee decision: the sync-rules table as one pure function."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from app.core import scim
from app.core.profile import ElevoProfile
from app.core.rules import Standing


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    ADOPT = "adopt"
    SUSPEND = "suspend"
    REACTIVATE = "reactivate"
    RELEASE = "release"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    CONFLICT = "conflict"
    HELD = "held"
    ERROR = "error"


WRITES = frozenset(
    {Action.CREATE, Action.UPDATE, Action.ADOPT, Action.SUSPEND, Action.REACTIVATE, Action.RELEASE}
)


@dataclass(frozen=True, slots=True)
class Change:
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class Decision:
    user: str
    action: Action
    reason: str
    diff: Mapping[str, Change] = field(default_factory=dict)
    # The employee's own Elevo profile (linked by externalId, or adopted, or created); never
    # the profile of someone else that a conflict names.
    profile_id: str | None = None

    @property
    def writes(self) -> bool:
        return self.action in WRITES

    def plan_entry(self) -> dict[str, Any]:
        """The dry-run plan's shape (service.md)."""
        return {
            "user": self.user,
            "action": self.action.value,
            "reason": self.reason,
            "diff": {path: {"old": c.old, "new": c.new} for path, c in self.diff.items()},
        }


def diff_attributes(desired: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Change]:
    """Owned paths whose value differs; paths the sync does not own are never compared."""
    return {
        path: Change(current.get(path), value)
        for path, value in desired.items()
        if current.get(path) != value
    }


def _required(desired: Mapping[str, Any] | None, standing: Standing) -> Mapping[str, Any]:
    if desired is None:
        raise ValueError(f"an employee who is {standing} needs its desired profile here")
    return desired


def _same_user_name(profile: ElevoProfile, desired: Mapping[str, Any]) -> bool:
    wanted = desired.get(scim.USER_NAME)
    return isinstance(wanted, str) and profile.user_name.casefold() == wanted.casefold()


def decide(
    user_id: str,
    standing: Standing,
    desired: Mapping[str, Any] | None,
    profile: ElevoProfile | None,
) -> Decision:
    """Apply the sync-rules table to one employee.

    `desired` is the profile Lucca implies; it may be None where no profile is written from
    it (gone, excluded, left without a profile). `profile` is the Elevo profile linked to the
    employee by externalId or, failing that, the one whose userName matches.
    """
    if profile is None:
        if standing is Standing.ACTIVE:
            wanted = _required(desired, standing)
            return Decision(user_id, Action.CREATE, "new in Lucca", diff_attributes(wanted, {}))
        return Decision(user_id, Action.SKIPPED, f"{standing}: no Elevo profile")
    linked = profile.external_id == user_id
    if profile.managed and linked:
        return _decide_managed(user_id, standing, desired, profile)
    if standing is not Standing.ACTIVE:
        mine = profile.id if linked else None
        return Decision(user_id, Action.SKIPPED, f"{standing}: profile not managed", {}, mine)
    desired = _required(desired, standing)
    if not profile.managed and (
        linked or (profile.external_id is None and _same_user_name(profile, desired))
    ):
        how = "released profile taken back" if linked else "hand-made profile with this userName"
        return Decision(
            user_id, Action.ADOPT, how, diff_attributes(desired, profile.attributes), profile.id
        )
    owner = profile.external_id or "nobody"
    return Decision(
        user_id,
        Action.CONFLICT,
        f"userName {profile.user_name!r} belongs to profile {profile.id} "
        f"(externalId {owner}, syncSource {profile.sync_source or 'none'})",
    )


def _decide_managed(
    user_id: str, standing: Standing, desired: Mapping[str, Any] | None, profile: ElevoProfile
) -> Decision:
    if standing is Standing.EXCLUDED:
        diff = {scim.SYNC_SOURCE: Change(profile.sync_source, None)}
        return Decision(user_id, Action.RELEASE, "skip checkbox ticked in Lucca", diff, profile.id)
    if standing is Standing.GONE:
        if not profile.active:
            return Decision(user_id, Action.UNCHANGED, "gone, already suspended", {}, profile.id)
        diff = {scim.ACTIVE: Change(True, False)}
        return Decision(user_id, Action.SUSPEND, "no longer in Lucca", diff, profile.id)
    wanted = _required(desired, standing)
    diff = diff_attributes(wanted, profile.attributes)
    if scim.ACTIVE in diff:
        if wanted[scim.ACTIVE]:
            return Decision(user_id, Action.REACTIVATE, "employed again", diff, profile.id)
        return Decision(user_id, Action.SUSPEND, "contract ended", diff, profile.id)
    if diff:
        return Decision(user_id, Action.UPDATE, "synced fields differ", diff, profile.id)
    return Decision(user_id, Action.UNCHANGED, "up to date", {}, profile.id)

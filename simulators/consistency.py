"""Does Elevo hold what the sync rules say Lucca implies? Used by the demo, tests and benches.

Independent of the worker's code path: it recomputes every expected profile from a full
Lucca dump with the pure core, then compares with every SCIM profile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.core.errors import InvalidLuccaUser
from app.core.lucca_user import LuccaUser, parse_user
from app.core.profile import ElevoProfile
from app.core.rules import Standing, desired_attributes, standing_of


@dataclass
class Report:
    checked: int = 0
    mismatches: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _standings(
    users: Iterable[LuccaUser], skip_field: str, today: date
) -> dict[str, tuple[LuccaUser, Standing]]:
    found = {}
    for user in users:
        try:
            found[user.id] = (user, standing_of(user, skip_field=skip_field, today=today))
        except InvalidLuccaUser:
            continue
    return found


def check(
    lucca_items: Iterable[Mapping[str, Any]],
    profiles: Iterable[ElevoProfile],
    *,
    skip_field: str,
    custom_fields: Mapping[str, str],
    today: date,
) -> Report:
    users = []
    for item in lucca_items:
        try:
            users.append(parse_user(item))
        except InvalidLuccaUser:
            continue
    standings = _standings(users, skip_field, today)
    all_profiles = list(profiles)
    by_external = {p.external_id: p for p in all_profiles if p.external_id}
    report = Report()
    for user, standing in standings.values():
        report.checked += 1
        problem = _check_user(user, standing, by_external, all_profiles, custom_fields)
        if problem is not None:
            kind, text = problem
            (report.conflicts if kind == "conflict" else report.mismatches).append(text)
    for external_id, profile in by_external.items():
        if external_id not in standings and profile.managed and profile.active:
            report.mismatches.append(f"{external_id}: gone from Lucca but still active")
    return report


def _check_user(
    user: LuccaUser,
    standing: Standing,
    by_external: Mapping[str, ElevoProfile],
    all_profiles: list[ElevoProfile],
    custom_fields: Mapping[str, str],
) -> tuple[str, str] | None:
    user_id = user.id
    profile = by_external.get(user_id)
    managed = profile is not None and profile.managed
    if standing is Standing.EXCLUDED:
        return ("mismatch", f"{user_id}: excluded but still managed") if managed else None
    if profile is None or not managed:
        if standing is not Standing.ACTIVE or not user.user_name:
            return None  # left without a profile, or a per-user error: nothing to hold
        holder = _holder_of(all_profiles, user.user_name)
        if holder is not None and holder.external_id != user_id:
            return ("conflict", f"{user_id}: userName held by {holder.external_id}")
        return ("mismatch", f"{user_id}: active in Lucca, no managed profile")
    manager = by_external.get(user.manager_id) if user.manager_id else None
    try:
        desired = desired_attributes(
            user,
            custom_fields=custom_fields,
            manager_profile_id=manager.id if manager else None,
            active=standing is Standing.ACTIVE,
        )
    except InvalidLuccaUser:
        return None
    wrong = [
        f"{path} is {profile.attributes.get(path)!r}, expected {value!r}"
        for path, value in desired.items()
        if profile.attributes.get(path) != value
    ]
    return ("mismatch", f"{user_id}: " + "; ".join(wrong)) if wrong else None


def _holder_of(profiles: list[ElevoProfile], user_name: str | None) -> ElevoProfile | None:
    if not user_name:
        return None
    wanted = user_name.casefold()
    return next((p for p in profiles if p.user_name.casefold() == wanted), None)

"""Does Elevo hold what the sync rules say Lucca implies? Used by the demo, tests and benches.

An independent second reading of contracts/sync-rules.md and contracts/elevo/README.md: it
parses raw Lucca v3 items and SCIM Users itself and imports nothing from `app`, so a bug in the
sync's mapping or skip rules shows up here as a mismatch instead of being repeated by the judge.

Profiles are raw SCIM resources (dicts, as Elevo returns them; stack/checks.py reads them), never
the sync's own parsed profiles: its SCIM parsing is part of what is judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ELEVO = "urn:ietf:params:scim:schemas:extension:elevo:2.0:User"
SYNC_SOURCE = "lucca"

# The synced Elevo fields by a label of our own, with the Lucca text field each one mirrors
# (elevo/README.md, "The profile"). Manager, department, work start date and custom fields
# need more than a copy and are computed apart.
COPIED_TEXT = {
    "givenName": "firstName",
    "familyName": "lastName",
    "title": "jobTitle",
    "employeeNumber": "employeeNumber",
    "email": "mail",
}
# Where the sync's typed profile keeps each label in its flat `attributes` view.
FLAT_PATHS = {
    "givenName": "name.givenName",
    "familyName": "name.familyName",
    "title": "title",
    "employeeNumber": f"{ENTERPRISE}:employeeNumber",
    "department": f"{ENTERPRISE}:department",
    "manager": f"{ENTERPRISE}:manager.value",
    "workStartDate": f"{ELEVO}:workStartDate",
}


class Standing(StrEnum):
    ACTIVE = "active"
    LEFT = "left"
    EXCLUDED = "excluded"


class Unreadable(ValueError):
    """A Lucca value the rules call a per-user error: the sync writes nothing for them."""


@dataclass
class Report:
    checked: int = 0
    mismatches: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    # Lucca users with a per-user error: nothing is expected of their profile.
    unreadable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


@dataclass(frozen=True)
class Employee:
    """One Lucca user as the rules see it: a standing and the profile fields it implies."""

    lucca_id: str
    standing: Standing
    user_name: str | None
    manager_id: str | None
    fields: dict[str, Any]  # label -> expected value; None means "absent"


@dataclass(frozen=True)
class Held:
    """One Elevo profile, reduced to the fields the sync owns (same labels as Employee)."""

    scim_id: str
    external_id: str | None
    user_name: str
    active: bool
    managed: bool
    fields: dict[str, Any]


# -- Lucca ----------------------------------------------------------------------------------


def lucca_id(value: Any) -> str | None:
    """A v3 id (a positive integer, or its ASCII digits) as text; None when not one."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and int(value) > 0:
        return value
    return None


def text_of(item: Mapping[str, Any], key: str) -> str | None:
    """A Lucca text field; empty or blank is absent ("never writes an empty string")."""
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Unreadable(f"{key} is a {type(value).__name__}, not text")
    return value.strip() or None


def date_of(item: Mapping[str, Any], key: str) -> date | None:
    value = item.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Unreadable(f"{key} is a {type(value).__name__}, not a date")
    try:
        return date.fromisoformat(value[:10])  # the date part; Lucca dates are local
    except ValueError:
        raise Unreadable(f"{key} is not a date: {value[:40]!r}") from None


def reference_of(item: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = item.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise Unreadable(f"{key} is a {type(value).__name__}, not an object")
    return value


def is_excluded(item: Mapping[str, Any], skip_field: str) -> bool:
    """The skip checkbox, `{"id", "value"}` or bare; absent or null means unticked."""
    extended = item.get("extendedData")
    if extended is None:
        return False
    if not isinstance(extended, Mapping):
        raise Unreadable("extendedData is not an object")
    value = extended.get(skip_field)
    if isinstance(value, Mapping):
        value = value.get("value")
    if value is None or value is False:
        return False
    if value is True:
        return True
    raise Unreadable(f"skip field {skip_field} holds a {type(value).__name__}")


def standing_from(item: Mapping[str, Any], skip_field: str, today: date) -> Standing:
    """Excluded wins over left; the last day (`dtContractEnd`) is still employed."""
    if is_excluded(item, skip_field):
        return Standing.EXCLUDED
    last_day = date_of(item, "dtContractEnd")
    if last_day is not None and last_day < today:
        return Standing.LEFT
    return Standing.ACTIVE


def custom_text(value: Any) -> str | None:
    """A custom field value as Elevo text (sync-rules.md, "Values"); None is absent."""
    if value is None:
        return None
    if value is True or value is False:
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format(Decimal(str(value)), "f")  # decimal notation, never an exponent
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, Mapping):
        for key in ("value", "name"):
            if key in value:
                return custom_text(value[key])
        raise Unreadable("a custom field object with neither value nor name")
    if isinstance(value, list):
        texts = [custom_text(entry) for entry in value]
        return ", ".join(t for t in texts if t) or None
    raise Unreadable(f"a custom field holds a {type(value).__name__}")


def at_path(item: Mapping[str, Any], path: str) -> Any:
    current: Any = item
    for step in path.split("."):
        current = current.get(step) if isinstance(current, Mapping) else None
    return current


def employee_from(
    item: Mapping[str, Any], user_id: str, custom_fields: Mapping[str, str], standing: Standing
) -> Employee:
    mail, login = text_of(item, "mail"), text_of(item, "login")
    if not (mail or login) and standing is not Standing.EXCLUDED:
        raise Unreadable("neither mail nor login: no Elevo userName")
    started = date_of(item, "dtContractStart")
    manager_id = lucca_id(reference_of(item, "manager").get("id"))
    if reference_of(item, "manager").get("id") is not None and manager_id is None:
        raise Unreadable("manager.id is not a Lucca id")
    wanted: dict[str, Any] = {label: text_of(item, key) for label, key in COPIED_TEXT.items()}
    wanted |= {
        "externalId": user_id,
        "userName": mail or login,
        "department": text_of(reference_of(item, "department"), "name"),
        "workStartDate": started.isoformat() if started else None,
        "active": standing is Standing.ACTIVE,
        "syncSource": SYNC_SOURCE,
    }
    for name, path in custom_fields.items():
        wanted[f"customFields[{name}]"] = custom_text(at_path(item, path))
    return Employee(
        lucca_id=user_id,
        standing=standing,
        user_name=mail or login,
        manager_id=None if manager_id == user_id else manager_id,
        fields=wanted,
    )


# -- Elevo ----------------------------------------------------------------------------------


def held_from(resource: Mapping[str, Any], custom_names: Iterable[str]) -> Held:
    name = resource.get("name") or {}
    enterprise = resource.get(ENTERPRISE) or {}
    elevo = resource.get(ELEVO) or {}
    manager = enterprise.get("manager")
    flat = {
        "givenName": name.get("givenName"),
        "familyName": name.get("familyName"),
        "title": resource.get("title"),
        "employeeNumber": enterprise.get("employeeNumber"),
        "department": enterprise.get("department"),
        "manager": manager.get("value") if isinstance(manager, Mapping) else None,
        "workStartDate": elevo.get("workStartDate"),
    }
    return _held(
        scim_id=str(resource.get("id")),
        external_id=resource.get("externalId") or None,
        user_name=resource.get("userName") or "",
        active=resource.get("active") is not False,  # SCIM: absent means active
        sync_source=elevo.get("syncSource"),
        flat=flat,
        emails=resource.get("emails") or (),
        custom=elevo.get("customFields") or (),
        custom_names=custom_names,
    )


def _held(
    *,
    scim_id: str,
    external_id: str | None,
    user_name: str,
    active: bool,
    sync_source: str | None,
    flat: Mapping[str, Any],
    emails: Iterable[Any],
    custom: Iterable[Any],
    custom_names: Iterable[str],
) -> Held:
    work = [e.get("value") for e in emails if isinstance(e, Mapping) and e.get("type") == "work"]
    values = {c.get("name"): c.get("value") for c in custom if isinstance(c, Mapping)}
    fields = dict(flat)
    fields |= {
        "externalId": external_id,
        "userName": user_name,
        "email": work[0] if work else None,
        "active": active,
        "syncSource": sync_source,
    }
    for name in custom_names:
        fields[f"customFields[{name}]"] = values.get(name)
    return Held(scim_id, external_id, user_name, active, sync_source == SYNC_SOURCE, fields)


# -- the comparison -------------------------------------------------------------------------


def check(
    lucca_items: Iterable[Mapping[str, Any]],
    profiles: Iterable[Mapping[str, Any]],
    *,
    skip_field: str,
    custom_fields: Mapping[str, str],
    today: date,
) -> Report:
    """Every Lucca user against every profile: what the rules expect versus what Elevo holds.

    `profiles` are raw SCIM Users, as Elevo returns them.
    """
    report = Report()
    employees: dict[str, Employee] = {}
    in_lucca: set[str] = set()
    for item in lucca_items:
        user_id = lucca_id(item.get("id"))
        if user_id is None:
            continue
        in_lucca.add(user_id)
        try:
            standing = standing_from(item, skip_field, today)
            employees[user_id] = employee_from(item, user_id, custom_fields, standing)
        except Unreadable as exc:
            report.unreadable.append(f"{user_id}: {exc}")
    held = [held_from(p, custom_fields) for p in profiles]
    by_external: dict[str, Held] = {}
    for profile in held:
        if profile.external_id is None:
            continue
        if profile.external_id in by_external:
            report.mismatches.append(f"{profile.external_id}: linked to two or more profiles")
        by_external.setdefault(profile.external_id, profile)
    for employee in employees.values():
        report.checked += 1
        _judge(employee, by_external, held, report)
    for external_id, profile in by_external.items():
        if external_id not in in_lucca and profile.managed and profile.active:
            report.mismatches.append(f"{external_id}: gone from Lucca but still active")
    return report


def _judge(
    employee: Employee, by_external: Mapping[str, Held], held: list[Held], report: Report
) -> None:
    user_id = employee.lucca_id
    profile = by_external.get(user_id)
    if employee.standing is Standing.EXCLUDED:
        if profile is not None and profile.managed:
            report.mismatches.append(f"{user_id}: excluded but still managed")
        elif profile is not None and not profile.active:
            # Released, never suspended: nothing in Lucca (still employed) explains it.
            report.mismatches.append(f"{user_id}: excluded, yet suspended")
        return
    if profile is None or not profile.managed:
        _judge_unmanaged(employee, profile, held, report)
        return
    manager = by_external.get(employee.manager_id) if employee.manager_id else None
    wanted = employee.fields | {"manager": manager.scim_id if manager else None}
    wrong = [
        f"{label} is {profile.fields.get(label)!r}, expected {value!r}"
        for label, value in sorted(wanted.items())
        if profile.fields.get(label) != value
    ]
    if wrong:
        report.mismatches.append(f"{user_id}: " + "; ".join(wrong))


def _judge_unmanaged(
    employee: Employee, profile: Held | None, held: list[Held], report: Report
) -> None:
    """An active employee should have a managed profile: created, adopted or taken back."""
    user_id = employee.lucca_id
    if employee.standing is not Standing.ACTIVE or employee.user_name is None:
        return  # left without a managed profile, or no userName (a per-user error)
    if profile is not None:
        report.mismatches.append(f"{user_id}: its released profile was not taken back")
        return
    wanted = employee.user_name.casefold()
    holder = next((p for p in held if p.user_name.casefold() == wanted), None)
    if holder is not None and holder.external_id not in (None, user_id):
        report.conflicts.append(f"{user_id}: userName held by {holder.external_id}")
        return
    report.mismatches.append(f"{user_id}: active in Lucca, no managed profile")

"""SCIM request bodies built from a decision: the create resource and the PATCH operations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from app.core import scim
from app.core.decision import Change
from app.core.profile import ElevoProfile

# Paths written as they are: a value replaces, None removes.
_PLAIN = frozenset(
    {
        "externalId",
        scim.USER_NAME,
        scim.GIVEN_NAME,
        scim.FAMILY_NAME,
        scim.TITLE,
        scim.ACTIVE,
        scim.EMPLOYEE_NUMBER,
        scim.DEPARTMENT,
        scim.WORK_START_DATE,
        scim.SYNC_SOURCE,
    }
)
_MANAGER_ATTRIBUTE = f"{scim.ENTERPRISE}:manager"


def _custom_names(desired: Mapping[str, Any]) -> list[str]:
    return [name for path in desired if (name := scim.custom_field_name(path)) is not None]


def create_resource(desired: Mapping[str, Any]) -> dict[str, Any]:
    """The POST /Users body for a new profile; absent values are left out."""
    resource: dict[str, Any] = {
        "schemas": [scim.CORE_USER, scim.ENTERPRISE, scim.ELEVO],
        "externalId": desired["externalId"],
        "userName": desired[scim.USER_NAME],
        "active": desired[scim.ACTIVE],
    }
    name = {
        key: desired[path]
        for key, path in (("givenName", scim.GIVEN_NAME), ("familyName", scim.FAMILY_NAME))
        if desired.get(path) is not None
    }
    if name:
        resource["name"] = name
    if desired.get(scim.TITLE) is not None:
        resource["title"] = desired[scim.TITLE]
    emails = merged_emails((), desired.get(scim.WORK_EMAIL))
    if emails:
        resource["emails"] = emails
    enterprise: dict[str, Any] = {}
    for key, path in (("employeeNumber", scim.EMPLOYEE_NUMBER), ("department", scim.DEPARTMENT)):
        if desired.get(path) is not None:
            enterprise[key] = desired[path]
    if desired.get(scim.MANAGER) is not None:
        enterprise["manager"] = {"value": desired[scim.MANAGER]}
    resource[scim.ENTERPRISE] = enterprise
    elevo: dict[str, Any] = {"syncSource": desired[scim.SYNC_SOURCE]}
    if desired.get(scim.WORK_START_DATE) is not None:
        elevo["workStartDate"] = desired[scim.WORK_START_DATE]
    custom = merged_custom_fields((), desired)
    if custom:
        elevo["customFields"] = custom
    resource[scim.ELEVO] = elevo
    return resource


def merged_emails(current: tuple[Mapping[str, Any], ...], work: str | None) -> list[dict[str, Any]]:
    """The emails list with the sync's `work` entry set to `work`, others kept as they are."""
    others = [dict(e) for e in current if e.get("type") != "work"]
    if work is None:
        return others
    primary = not any(e.get("primary") for e in others)
    return [{"value": work, "type": "work", "primary": primary}, *others]


def merged_custom_fields(
    current: tuple[Mapping[str, Any], ...], desired: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """customFields with the tenant's mapped entries set; entries it does not map are kept."""
    owned = _custom_names(desired)
    kept = [dict(c) for c in current if c.get("name") not in owned]
    mine = [
        {"name": name, "value": value}
        for name in owned
        if (value := desired[scim.custom_field_path(name)]) is not None
    ]
    return kept + mine


def _list_operation(path: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    if not items:
        return {"op": "remove", "path": path}
    return {"op": "replace", "path": path, "value": items}


def patch_operations(
    diff: Mapping[str, Change], desired: Mapping[str, Any] | None, profile: ElevoProfile
) -> tuple[list[dict[str, Any]], bool]:
    """PATCH operations for `diff`, and whether they rewrite a list (so need If-Match)."""
    operations: list[dict[str, Any]] = []
    rewrites_list = False
    for path, change in diff.items():
        if path in _PLAIN:
            if change.new is None:
                operations.append({"op": "remove", "path": path})
            else:
                operations.append({"op": "replace", "path": path, "value": change.new})
        elif path == scim.MANAGER:
            if change.new is None:
                operations.append({"op": "remove", "path": _MANAGER_ATTRIBUTE})
            else:
                value = {"value": change.new}
                operations.append({"op": "replace", "path": _MANAGER_ATTRIBUTE, "value": value})
        elif path == scim.WORK_EMAIL:
            rewrites_list = True
            operations.append(_list_operation("emails", merged_emails(profile.emails, change.new)))
    if desired is not None and any(scim.custom_field_name(p) for p in diff):
        rewrites_list = True
        custom = merged_custom_fields(profile.custom_fields, desired)
        operations.append(_list_operation(scim.CUSTOM_FIELDS, custom))
    return operations, rewrites_list


def patched(
    profile: ElevoProfile,
    diff: Mapping[str, Change],
    desired: Mapping[str, Any] | None,
    version: str,
) -> ElevoProfile:
    """The profile as Elevo holds it once `patch_operations(diff, desired, profile)` is
    applied, at its new `version`: the copy a later sync may diff against without a read."""
    attributes = dict(profile.attributes)
    attributes.update({path: change.new for path, change in diff.items()})
    emails = profile.emails
    if scim.WORK_EMAIL in diff:
        emails = tuple(merged_emails(profile.emails, diff[scim.WORK_EMAIL].new))
    custom_fields = profile.custom_fields
    if desired is not None and any(scim.custom_field_name(p) for p in diff):
        custom_fields = tuple(merged_custom_fields(profile.custom_fields, desired))
        attributes.update(
            {
                scim.custom_field_path(n): desired[scim.custom_field_path(n)]
                for n in _custom_names(desired)
            }
        )
    return replace(
        profile,
        version=version,
        external_id=attributes.get("externalId"),
        user_name=attributes.get(scim.USER_NAME) or "",
        active=bool(attributes.get(scim.ACTIVE)),
        sync_source=attributes.get(scim.SYNC_SOURCE),
        attributes=attributes,
        emails=emails,
        custom_fields=custom_fields,
    )

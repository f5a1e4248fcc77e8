"""Elevo profiles (SCIM Users) as typed values, and their flat comparable view."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.core import scim


@dataclass(frozen=True, slots=True)
class ElevoProfile:
    """One SCIM User as Elevo holds it."""

    id: str
    version: str | None
    external_id: str | None
    user_name: str
    active: bool
    sync_source: str | None
    # Flat path -> value over every attribute the sync may own (scim.py's paths);
    # custom fields appear under scim.custom_field_path(name).
    attributes: Mapping[str, Any]
    # The whole lists, so that a rewrite keeps the entries the sync does not own.
    emails: tuple[Mapping[str, Any], ...]
    custom_fields: tuple[Mapping[str, Any], ...]
    # SCIM's meta.created (ISO 8601), when Elevo tells it: which of two profiles is older.
    created: str | None = None

    @property
    def managed(self) -> bool:
        return self.sync_source == scim.SYNC_SOURCE_VALUE


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def profile_from_scim(resource: Mapping[str, Any]) -> ElevoProfile:
    """Read a SCIM User resource; unknown or missing attributes read as absent."""
    name = resource.get("name") or {}
    enterprise = resource.get(scim.ENTERPRISE) or {}
    elevo = resource.get(scim.ELEVO) or {}
    emails = tuple(e for e in resource.get("emails") or () if isinstance(e, Mapping))
    custom = tuple(c for c in elevo.get("customFields") or () if isinstance(c, Mapping))
    manager = enterprise.get("manager")
    work_email = next((e.get("value") for e in emails if e.get("type") == "work"), None)
    attributes: dict[str, Any] = {
        "externalId": _text(resource.get("externalId")),
        scim.USER_NAME: _text(resource.get("userName")),
        scim.GIVEN_NAME: _text(name.get("givenName")),
        scim.FAMILY_NAME: _text(name.get("familyName")),
        scim.TITLE: _text(resource.get("title")),
        scim.WORK_EMAIL: _text(work_email),
        scim.EMPLOYEE_NUMBER: _text(enterprise.get("employeeNumber")),
        scim.DEPARTMENT: _text(enterprise.get("department")),
        scim.MANAGER: _text(manager.get("value")) if isinstance(manager, Mapping) else None,
        scim.WORK_START_DATE: _text(elevo.get("workStartDate")),
        scim.SYNC_SOURCE: _text(elevo.get("syncSource")),
        scim.ACTIVE: resource.get("active") is not False,
    }
    for entry in custom:
        entry_name = entry.get("name")
        if isinstance(entry_name, str):
            attributes[scim.custom_field_path(entry_name)] = _text(entry.get("value"))
    meta = resource.get("meta") or {}
    return ElevoProfile(
        id=str(resource["id"]),
        version=meta.get("version") if isinstance(meta.get("version"), str) else None,
        external_id=_text(resource.get("externalId")),
        user_name=_text(resource.get("userName")) or "",
        active=attributes[scim.ACTIVE],
        sync_source=attributes[scim.SYNC_SOURCE],
        attributes=attributes,
        emails=emails,
        custom_fields=custom,
        created=meta.get("created") if isinstance(meta.get("created"), str) else None,
    )


def profile_to_dict(profile: ElevoProfile) -> dict[str, Any]:
    """A JSON-ready copy, for snapshots kept in Redis during a reconciliation."""
    return {
        "id": profile.id,
        "version": profile.version,
        "external_id": profile.external_id,
        "user_name": profile.user_name,
        "active": profile.active,
        "sync_source": profile.sync_source,
        "attributes": dict(profile.attributes),
        "emails": [dict(e) for e in profile.emails],
        "custom_fields": [dict(c) for c in profile.custom_fields],
        "created": profile.created,
    }


def profile_from_dict(data: Mapping[str, Any]) -> ElevoProfile:
    return ElevoProfile(
        id=data["id"],
        version=data["version"],
        external_id=data["external_id"],
        user_name=data["user_name"],
        active=data["active"],
        sync_source=data["sync_source"],
        attributes=data["attributes"],
        emails=tuple(data["emails"]),
        custom_fields=tuple(data["custom_fields"]),
        created=data.get("created"),  # absent from a snapshot an older version kept
    )


# The copy of a profile kept per employee (app/store/links.py) is read on every live sync and
# kept for many employees: short names for the attribute paths, no value stored twice.
_SHORT = {
    "externalId": "x",
    scim.USER_NAME: "u",
    scim.GIVEN_NAME: "g",
    scim.FAMILY_NAME: "f",
    scim.TITLE: "t",
    scim.WORK_EMAIL: "m",
    scim.EMPLOYEE_NUMBER: "n",
    scim.DEPARTMENT: "d",
    scim.MANAGER: "b",
    scim.WORK_START_DATE: "w",
    scim.SYNC_SOURCE: "s",
    scim.ACTIVE: "a",
}
_LONG = {short: path for path, short in _SHORT.items()}
_CUSTOM = "c:"


def _only_work_email(work: Any) -> tuple[Mapping[str, Any], ...]:
    return ({"value": work, "type": "work", "primary": True},) if work is not None else ()


def _short(path: str) -> str:
    if path in _SHORT:
        return _SHORT[path]
    name = scim.custom_field_name(path)
    if name is None:
        raise ValueError(f"not a path of the sync: {path!r}")
    return _CUSTOM + name


def profile_to_copy(profile: ElevoProfile) -> dict[str, Any]:
    """A compact JSON-ready copy: a stored format (keys.profile_copy)."""
    attributes = {
        _short(path): value for path, value in profile.attributes.items() if value is not None
    }
    copy: dict[str, Any] = {"i": profile.id, "v": profile.version, "a": attributes}
    if profile.emails != _only_work_email(profile.attributes.get(scim.WORK_EMAIL)):
        copy["e"] = [dict(e) for e in profile.emails]
    if profile.custom_fields:
        copy["c"] = [dict(c) for c in profile.custom_fields]
    if profile.created:
        copy["t"] = profile.created
    return copy


def profile_from_copy(copy: Mapping[str, Any]) -> ElevoProfile:
    stored = copy["a"]
    attributes: dict[str, Any] = dict.fromkeys(_SHORT, None)
    for key, value in stored.items():
        custom = key.startswith(_CUSTOM)
        attributes[scim.custom_field_path(key[len(_CUSTOM) :]) if custom else _LONG[key]] = value
    emails = copy.get("e")
    return ElevoProfile(
        id=copy["i"],
        version=copy["v"],
        external_id=attributes["externalId"],
        user_name=attributes[scim.USER_NAME] or "",
        active=bool(attributes[scim.ACTIVE]),
        sync_source=attributes[scim.SYNC_SOURCE],
        attributes=attributes,
        emails=tuple(emails)
        if emails is not None
        else _only_work_email(attributes[scim.WORK_EMAIL]),
        custom_fields=tuple(copy.get("c", ())),
        created=copy.get("t"),
    )

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

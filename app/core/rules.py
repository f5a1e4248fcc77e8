"""Skip rules and the profile an employee should have (sync-rules.md). Pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import Any

from app.core import scim
from app.core.errors import InvalidLuccaUser
from app.core.lucca_user import LuccaUser, as_text, value_at


class Standing(StrEnum):
    """What Lucca says of one employee, after the precedence rules."""

    ACTIVE = "active"  # employed today, or hired in the future
    LEFT = "left"  # the contract's last day is before today
    EXCLUDED = "excluded"  # the skip checkbox is ticked; wins over left and gone
    GONE = "gone"  # Lucca no longer returns the employee at all


def skip_value(user: LuccaUser, skip_field: str) -> bool:
    """True when the skip checkbox is ticked; a non-boolean value is the user's error."""
    extended = user.raw.get("extendedData")
    if extended is None:
        return False
    if not isinstance(extended, Mapping):
        raise InvalidLuccaUser(user.id, "extendedData should be an object")
    value = extended.get(skip_field)
    if isinstance(value, Mapping):
        value = value.get("value")
    if value is None or isinstance(value, bool):
        return value is True
    raise InvalidLuccaUser(
        user.id, f"skip field {skip_field} should be a checkbox, got {type(value).__name__}"
    )


def standing_of(user: LuccaUser | None, *, skip_field: str, today: date) -> Standing:
    if user is None:
        return Standing.GONE
    if skip_value(user, skip_field):
        return Standing.EXCLUDED
    if user.contract_end is not None and user.contract_end < today:
        return Standing.LEFT
    return Standing.ACTIVE


def desired_attributes(
    user: LuccaUser,
    *,
    custom_fields: Mapping[str, str],
    manager_profile_id: str | None,
    active: bool,
) -> dict[str, Any]:
    """The flat SCIM view (scim.py's paths) the employee's profile should have.

    Every owned path is present; None means "the attribute is absent".
    """
    if user.user_name is None:
        raise InvalidLuccaUser(user.id, "has neither mail nor login: no Elevo userName")
    desired: dict[str, Any] = {
        "externalId": user.id,
        scim.USER_NAME: user.user_name,
        scim.GIVEN_NAME: user.first_name,
        scim.FAMILY_NAME: user.last_name,
        scim.TITLE: user.job_title,
        scim.WORK_EMAIL: user.mail,
        scim.EMPLOYEE_NUMBER: user.employee_number,
        scim.DEPARTMENT: user.department_name,
        scim.MANAGER: manager_profile_id,
        scim.WORK_START_DATE: user.contract_start.isoformat() if user.contract_start else None,
        scim.ACTIVE: active,
        scim.SYNC_SOURCE: scim.SYNC_SOURCE_VALUE,
    }
    for name, path in sorted(custom_fields.items()):
        try:
            desired[scim.custom_field_path(name)] = as_text(value_at(user.raw, path))
        except ValueError as exc:
            raise InvalidLuccaUser(user.id, f"custom field {name} ({path}) holds {exc}") from None
    return desired

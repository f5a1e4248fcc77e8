"""Lucca v3 users as typed values: parsing, the `fields=` projection, custom field text."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from app.core.errors import InvalidLuccaUser

BASE_FIELDS = (
    "id",
    "firstName",
    "lastName",
    "mail",
    "login",
    "jobTitle",
    "employeeNumber",
    "dtContractStart",
    "dtContractEnd",
    "modifiedAt",
    "manager[id]",
    "department[id,name]",
    "extendedData",
)


@dataclass(frozen=True, slots=True)
class LuccaUser:
    """One employee as Lucca's v3 API returns it, with the synced fields typed."""

    id: str
    first_name: str | None
    last_name: str | None
    mail: str | None
    login: str | None
    job_title: str | None
    employee_number: str | None
    contract_start: date | None
    contract_end: date | None
    modified_at: datetime | None
    manager_id: str | None  # None when absent, null, or the user's own id
    department_id: str | None
    department_name: str | None
    raw: Mapping[str, Any]  # the whole item: custom field paths and the skip field read it

    @property
    def user_name(self) -> str | None:
        return self.mail or self.login


# Lucca's ids fit a signed 64-bit integer; 18 digits keep every id below 2**63 and every
# conversion (int(), JSON numbers, Redis keys) cheap.
MAX_ID_DIGITS = 18


def user_id_of(item: Mapping[str, Any]) -> str | None:
    """The item's id as a canonical string ("0416" is "416"), or None when it has none worth
    trusting: anything but ASCII digits, zero, or more than MAX_ID_DIGITS significant digits."""
    raw_id = item.get("id")
    if isinstance(raw_id, bool):
        return None
    if isinstance(raw_id, int):
        return str(raw_id) if 0 < raw_id < 10**MAX_ID_DIGITS else None
    # isdigit() alone admits "²" and other scripts' digits; no int(): a 5000-digit string
    # would raise.
    if isinstance(raw_id, str) and raw_id.isascii() and raw_id.isdigit():
        canonical = raw_id.lstrip("0")
        return canonical if 0 < len(canonical) <= MAX_ID_DIGITS else None
    return None


def is_user_id(text: str) -> bool:
    """Whether `text` is a Lucca user id as the sync keys users (canonical digits)."""
    return user_id_of({"id": text}) == text


def parse_user(item: Mapping[str, Any]) -> LuccaUser:
    """Type one v3 item; a field of the wrong type raises :class:`InvalidLuccaUser`."""
    user_id = user_id_of(item)
    if user_id is None:
        raise InvalidLuccaUser(repr(item.get("id"))[:40], "has no valid id")
    manager = _reference(user_id, item, "manager")
    department = _reference(user_id, item, "department")
    manager_id = _ref_id(user_id, manager, "manager")
    return LuccaUser(
        id=user_id,
        first_name=_text(user_id, item, "firstName"),
        last_name=_text(user_id, item, "lastName"),
        mail=_text(user_id, item, "mail"),
        login=_text(user_id, item, "login"),
        job_title=_text(user_id, item, "jobTitle"),
        employee_number=_text(user_id, item, "employeeNumber"),
        contract_start=_date(user_id, item, "dtContractStart"),
        contract_end=_date(user_id, item, "dtContractEnd"),
        modified_at=_datetime(user_id, item, "modifiedAt"),
        manager_id=None if manager_id == user_id else manager_id,
        department_id=_ref_id(user_id, department, "department"),
        department_name=_text(user_id, department or {}, "name", label="department.name"),
        raw=item,
    )


def _text(user_id: str, item: Mapping[str, Any], key: str, *, label: str = "") -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        kind = type(value).__name__
        raise InvalidLuccaUser(user_id, f"{label or key} should be text, got {kind}")
    return value.strip() or None


def _reference(user_id: str, item: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        kind = type(value).__name__
        raise InvalidLuccaUser(user_id, f"{key} should be an object or null, got {kind}")
    return value


def _ref_id(user_id: str, ref: Mapping[str, Any] | None, key: str) -> str | None:
    if ref is None or ref.get("id") is None:
        return None
    ref_id = user_id_of(ref)
    if ref_id is None:
        raise InvalidLuccaUser(user_id, f"{key}.id should be a positive integer")
    return ref_id


def _parse_iso(user_id: str, item: Mapping[str, Any], key: str) -> datetime | None:
    value = item.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidLuccaUser(user_id, f"{key} should be a date, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidLuccaUser(user_id, f"{key} is not an ISO date: {value[:40]!r}") from None
    # Lucca dates are the tenant's local dates; an offset, if any, is dropped, not converted.
    return parsed.replace(tzinfo=None)


def _date(user_id: str, item: Mapping[str, Any], key: str) -> date | None:
    parsed = _parse_iso(user_id, item, key)
    return None if parsed is None else parsed.date()


def _datetime(user_id: str, item: Mapping[str, Any], key: str) -> datetime | None:
    return _parse_iso(user_id, item, key)


def projection(custom_paths: Iterable[str]) -> str:
    """The `fields=` value: the synced fields plus what the custom field paths need."""
    fields = list(BASE_FIELDS)
    for path in custom_paths:
        head, _, rest = path.partition(".")
        if head == "extendedData" or not head:
            continue
        field = _bracketed(head, rest)
        if field not in fields:
            fields.append(field)
    return ",".join(fields)


def _bracketed(head: str, rest: str) -> str:
    if not rest:
        return head
    inner, _, deeper = rest.partition(".")
    return f"{head}[{_bracketed(inner, deeper)}]"


def value_at(item: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted v3 path, or None when any step is missing."""
    current: Any = item
    for step in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(step)
    return current


def as_text(value: Any) -> str | None:
    """A custom field value as Elevo text (sync-rules.md, "Values"); None means "remove".

    Raises ValueError for a value that has no sensible text form.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Decimal notation, never an exponent: 1e20 is "100000000000000000000".
        return format(Decimal(repr(value)), "f")
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, Mapping):
        if "value" in value:
            return as_text(value["value"])
        if "name" in value:
            return as_text(value["name"])
        raise ValueError("an object with neither value nor name")
    if isinstance(value, list):
        parts = [text for text in (as_text(item) for item in value) if text is not None]
        return ", ".join(parts) or None
    raise ValueError(f"a {type(value).__name__}")

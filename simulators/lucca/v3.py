"""Small types and value shapes of the v3 directory, shared by the company and its callers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any, Final


class Unset(Enum):
    UNSET = "UNSET"


UNSET: Final = Unset.UNSET


class UnknownEntity(LookupError):
    """A user, department or legal entity id this company does not have."""


@dataclass(slots=True)
class Department:
    id: int
    name: str


@dataclass(slots=True)
class LegalEntity:
    id: int
    name: str


def v3_date(day: date | None) -> str | None:
    return None if day is None else f"{day.isoformat()}T00:00:00"


def parse_day(v3: str | None) -> date | None:
    return None if v3 is None else date.fromisoformat(v3[:10])


def check_period(start: date, end: date | None) -> None:
    if end is not None and end < start:
        raise ValueError(f"a contract cannot end ({end}) before it starts ({start})")


def stored_extension(value: Any, old: Any, new_id: Callable[[], int], *, bare: bool) -> Any:
    """The `extendedData` form of `value`: `{"id", "value"}`, a list of those, or bare.

    An edited value keeps the id of the value it replaces, as in Lucca.
    """
    if bare:
        return value
    if isinstance(value, dict) and "value" in value:
        return value if "id" in value else {"id": new_id(), **value}
    if isinstance(value, list):
        return [stored_extension(item, None, new_id, bare=False) for item in value]
    old_id = old.get("id") if isinstance(old, dict) else None
    return {"id": old_id if old_id is not None else new_id(), "value": value}


class HiddenSections:
    """HR-file sections the API key's role cannot read, their values kept aside per user.

    Users are v3 dicts; a hidden code is absent from their `extendedData` until shown again.
    """

    def __init__(self) -> None:
        self._shelves: dict[str, dict[int, Any]] = {}

    def codes(self) -> list[str]:
        return sorted(self._shelves)

    def hide(self, code: str, users: Iterable[dict[str, Any]]) -> bool:
        if code in self._shelves:
            return False
        shelf = self._shelves[code] = {}
        for user in users:
            if code in user["extendedData"]:
                shelf[user["id"]] = user["extendedData"].pop(code)
        return True

    def show(self, code: str, users: Mapping[int, dict[str, Any]]) -> bool:
        shelf = self._shelves.pop(code, None)
        if shelf is None:
            return False
        for user_id, stored in shelf.items():
            users[user_id]["extendedData"][code] = stored
        return True

    def lookup(self, user: dict[str, Any], code: str) -> tuple[bool, Any]:
        """Whether the user has a value for `code`, and that value, hidden or not."""
        values = self._shelves.get(code, user["extendedData"])
        key = user["id"] if code in self._shelves else code
        return key in values, values.get(key)

    def store(self, user: dict[str, Any], code: str, stored: Any) -> None:
        shelf = self._shelves.get(code)
        if shelf is not None:
            shelf[user["id"]] = stored
        else:
            user["extendedData"][code] = stored

    def forget(self, user_id: int) -> None:
        for shelf in self._shelves.values():
            shelf.pop(user_id, None)

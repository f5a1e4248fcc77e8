"""How a history entry is stored: compact in Redis, read back whole.

An entry as the service builds and shows it (`GET /sync/{tenant}/users/{id}`, the console) is
`{"user", "action", "reason", "diff": {path: {"old", "new"}}, "at", "run", "written",
"dry_run", ...}`. A creation's diff names every attribute with a `null` old value, and the
SCIM extension paths repeat their schema's URN: about 1 KB per employee for 30 days, the
largest share of a fleet's Redis (docs/scaling.md). Stored, an entry leaves out what the key
or its shape already says -- `user` (the key names it), `dry_run` (a dry run writes no
history), a `null` run -- keeps the changes from nothing apart as `set` (path -> new), and
writes the paths every profile has, and the two extension URNs, as short marks. `unpack`
gives back the very entry `pack` was given; an entry stored whole by an earlier version reads
back as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from app.core import scim

# A SCIM path never starts with "~": a mark cannot be taken for a path. The paths every
# profile has are one mark each (a stored format: a mark is never given to another path);
# any other path of an extension starts with its schema's mark.
_PATHS: Final = {
    "~x": "externalId",
    "~u": scim.USER_NAME,
    "~g": scim.GIVEN_NAME,
    "~f": scim.FAMILY_NAME,
    "~t": scim.TITLE,
    "~a": scim.ACTIVE,
    "~m": scim.WORK_EMAIL,
    "~n": scim.EMPLOYEE_NUMBER,
    "~d": scim.DEPARTMENT,
    "~b": scim.MANAGER,
    "~s": scim.WORK_START_DATE,
    "~o": scim.SYNC_SOURCE,
}
_SHORT_PATHS: Final = {path: mark for mark, path in _PATHS.items()}
_MARKS: Final = (("~e:", f"{scim.ENTERPRISE}:"), ("~v:", f"{scim.ELEVO}:"))


def _short(path: str) -> str:
    if path in _SHORT_PATHS:
        return _SHORT_PATHS[path]
    for mark, urn in _MARKS:
        if path.startswith(urn):
            return mark + path[len(urn) :]
    return path


def _long(path: str) -> str:
    if path in _PATHS:
        return _PATHS[path]
    for mark, urn in _MARKS:
        if path.startswith(mark):
            return urn + path[len(mark) :]
    return path


def pack(entry: Mapping[str, Any]) -> bytes:
    """The stored form of a history entry (JSON)."""
    stored = {k: v for k, v in entry.items() if k not in {"user", "diff", "dry_run", "run"}}
    if entry.get("dry_run"):
        stored["dry_run"] = True
    if entry.get("run") is not None:
        stored["run"] = entry["run"]
    created: dict[str, Any] = {}
    changed: dict[str, Any] = {}
    for path, change in (entry.get("diff") or {}).items():
        if change.get("old") is None and set(change) == {"old", "new"}:
            created[_short(path)] = change["new"]
        else:
            changed[_short(path)] = change
    if created:
        stored["set"] = created
    if changed:
        stored["diff"] = changed
    return orjson.dumps(stored, default=str)


def unpack(raw: bytes | str, user_id: str) -> dict[str, Any]:
    """A stored entry of `user_id`'s history, whole (in either stored form)."""
    stored = orjson.loads(raw)
    if "user" in stored:  # stored whole (before the compact form)
        return dict(stored)
    diff = {_long(p): {"old": None, "new": v} for p, v in stored.pop("set", {}).items()}
    diff |= {_long(p): change for p, change in stored.pop("diff", {}).items()}
    whole: dict[str, Any] = {
        "user": user_id,
        "action": stored.pop("action", None),
        "reason": stored.pop("reason", None),
        "diff": diff,
        "at": stored.pop("at", None),
        "run": stored.pop("run", None),
        "written": stored.pop("written", False),
        "dry_run": stored.pop("dry_run", False),
    }
    whole.update(stored)  # what else the entry holds: its error, a retired profile...
    return whole

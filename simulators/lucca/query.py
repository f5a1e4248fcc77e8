"""The query string of `GET /api/v3/users`: projection, filters and paging.

`fields=id,manager[id,name],extendedData` becomes a tree `{"id": None, "manager": {"id": None,
"name": None}, "extendedData": None}` (None: the whole value). Anything the simulator does not
know is refused with a `QueryError` (a 400), so a typo in the sync cannot pass unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Projection = dict[str, "Projection | None"]

MAX_LIMIT = 1000
DEFAULT_PROJECTION: Projection = {"id": None, "name": None, "url": None}
STORED_FIELDS = frozenset(
    {
        "id", "firstName", "lastName", "mail", "login", "jobTitle", "employeeNumber",
        "dtContractStart", "dtContractEnd", "modifiedAt", "manager", "department",
        "legalEntity", "extendedData",
    }
)  # fmt: skip
COMPUTED_FIELDS = frozenset(
    {"name", "displayName", "url", "managerId", "departmentId", "legalEntityId"}
)
REFERENCE_FIELDS = frozenset({"manager", "department", "legalEntity"})
REFERENCE_KEYS = frozenset({"id", "name", "url"})
_LIST_FILTERS = {"id": "ids", "departmentId": "department_ids", "legalEntityId": "entity_ids"}


class QueryError(ValueError):
    """A parameter Lucca would refuse with a 400."""


def parse_fields(text: str) -> Projection:
    projection, pos = _parse_list(text, 0)
    if pos != len(text):
        raise QueryError(f"fields: unexpected {text[pos]!r} at position {pos}")
    for name, sub in projection.items():
        if name not in STORED_FIELDS and name not in COMPUTED_FIELDS:
            raise QueryError(f"fields: unknown field {name!r}")
        if name in REFERENCE_FIELDS and sub is not None and not set(sub) <= REFERENCE_KEYS:
            raise QueryError(f"fields: {name} has only {sorted(REFERENCE_KEYS)}")
        if sub is not None and name not in REFERENCE_FIELDS and name != "extendedData":
            raise QueryError(f"fields: {name} is not an object")
    return projection


def _parse_list(text: str, pos: int) -> tuple[Projection, int]:
    """Parse `name[...],name,...` from `pos`; stops at the end or before a closing `]`."""
    result: Projection = {}
    while True:
        start = pos
        while pos < len(text) and text[pos] not in ",[]":
            pos += 1
        name = text[start:pos].strip()
        if not name:
            raise QueryError(f"fields: empty name at position {start}")
        sub: Projection | None = None
        if pos < len(text) and text[pos] == "[":
            sub, pos = _parse_list(text, pos + 1)
            if pos >= len(text) or text[pos] != "]":
                raise QueryError(f"fields: missing ']' after {name}")
            pos += 1
            while pos < len(text) and text[pos] == " ":
                pos += 1
        result[name] = _merge(result[name], sub) if name in result else sub
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        return result, pos


def _merge(a: Projection | None, b: Projection | None) -> Projection | None:
    if a is None or b is None:
        return None
    merged = dict(a)
    for key, sub in b.items():
        merged[key] = _merge(merged[key], sub) if key in merged else sub
    return merged


def project(value: Any, projection: Projection) -> Any:
    """Keep the projected keys of an object (or of each object of a list)."""
    if isinstance(value, dict):
        return {
            key: value[key] if sub is None else project(value[key], sub)
            for key, sub in projection.items()
            if key in value
        }
    if isinstance(value, list):
        return [project(item, projection) for item in value]
    return value


Renderer = Callable[[dict[str, Any]], dict[str, Any]]


def renderer(projection: Projection, source: str) -> Renderer:
    """A function projecting one stored user; built once per request, run on every item."""
    getters: list[tuple[str, Callable[[dict[str, Any]], Any]]] = []
    for name, sub in projection.items():
        getters.append((name, _getter(name, sub, source)))
    return lambda user: {name: get(user) for name, get in getters}


def _getter(name: str, sub: Projection | None, source: str) -> Callable[[dict[str, Any]], Any]:
    if name not in STORED_FIELDS:
        return lambda user: _computed(user, name, source)
    if sub is None:
        return lambda user: user.get(name)
    if name in REFERENCE_FIELDS:
        keys = tuple(sub)
        return lambda user: (
            None if (ref := user.get(name)) is None else {k: ref[k] for k in keys if k in ref}
        )
    return lambda user: project(user.get(name), sub)


def project_user(user: dict[str, Any], projection: Projection, source: str) -> dict[str, Any]:
    return renderer(projection, source)(user)


def _computed(user: dict[str, Any], name: str, source: str) -> Any:
    if name in ("name", "displayName"):
        return f"{user['firstName']} {user['lastName']}"
    if name == "url":
        return f"{source}/api/v3/users/{user['id']}"
    ref = user.get(name.removesuffix("Id"))
    return None if ref is None else ref["id"]


@dataclass(frozen=True, slots=True)
class UserQuery:
    projection: Projection
    ids: tuple[int, ...] | None = None
    department_ids: frozenset[int] | None = None
    entity_ids: frozenset[int] | None = None
    mail: str | None = None
    login: str | None = None
    # Inclusive bounds on modifiedAt, in its stored format (local time, milliseconds).
    modified_since: str | None = None
    modified_until: str | None = None
    former: bool = False
    offset: int = 0
    limit: int = MAX_LIMIT

    def filter_key(self) -> tuple[object, ...]:
        """What selects the users (not the projection, not the page)."""
        return (
            self.ids,
            self.department_ids,
            self.entity_ids,
            self.mail,
            self.login,
            self.modified_since,
            self.modified_until,
            self.former,
        )

    def select(self, users: Iterable[dict[str, Any]], today: str) -> list[dict[str, Any]]:
        """The users this query keeps, in their order. `today` is the local date (ISO).

        It runs on every user of a listing, so each filter is one pass that only the queries
        asking for it pay.
        """
        # A v3 date-time sorts after its own date, so `end >= today` means "ends today or later".
        kept = (
            list(users)
            if self.former
            else [u for u in users if u["dtContractEnd"] is None or u["dtContractEnd"] >= today]
        )
        for check in self._checks():
            kept = list(filter(check, kept))
        return kept

    def _checks(self) -> list[Callable[[dict[str, Any]], bool]]:
        checks: list[Callable[[dict[str, Any]], bool]] = []
        since, until = self.modified_since, self.modified_until
        if since is not None:
            checks.append(lambda u: canonical_time(u["modifiedAt"]) >= since)
        if until is not None:
            checks.append(lambda u: canonical_time(u["modifiedAt"]) <= until)
        departments, entities = self.department_ids, self.entity_ids
        if departments is not None:
            checks.append(lambda u: _ref_in(u["department"], departments))
        if entities is not None:
            checks.append(lambda u: _ref_in(u["legalEntity"], entities))
        mail, login = self.mail, self.login
        if mail is not None:
            checks.append(lambda u: u["mail"] == mail)
        if login is not None:
            checks.append(lambda u: u["login"] == login)
        return checks


def _ref_in(ref: dict[str, Any] | None, wanted: frozenset[int]) -> bool:
    return ref is not None and ref["id"] in wanted


def canonical_time(text: str) -> str:
    # The simulator writes 23 characters; anything else is normalised so strings compare.
    if len(text) == 23:
        return text
    return datetime.fromisoformat(text).isoformat(timespec="milliseconds")


def parse_query(items: Iterable[tuple[str, str]]) -> UserQuery:
    """Build a query from the request's parameters, refusing unknown or repeated ones."""
    params: dict[str, str] = {}
    for key, value in items:
        if key in params:
            raise QueryError(f"{key} is given twice")
        params[key] = value
    args: dict[str, Any] = {}
    args["projection"] = parse_fields(params.pop("fields")) if "fields" in params else None
    for key, attr in _LIST_FILTERS.items():
        if key in params:
            ints = _int_list(key, params.pop(key))
            args[attr] = tuple(ints) if attr == "ids" else frozenset(ints)
    for key in ("mail", "login"):
        if key in params:
            args[key] = params.pop(key)
    if "modifiedAt" in params:
        args["modified_since"], args["modified_until"] = _period(params.pop("modifiedAt"))
    if "formerEmployees" in params:
        args["former"] = _boolean("formerEmployees", params.pop("formerEmployees"))
    if "paging" in params:
        args["offset"], args["limit"] = _paging(params.pop("paging"))
    if params:
        raise QueryError(f"unsupported parameter(s): {', '.join(sorted(params))}")
    if args["projection"] is None:
        args["projection"] = DEFAULT_PROJECTION
    return UserQuery(**args)


def _int_list(key: str, text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise QueryError(f"{key} takes integers separated by commas") from None
    return values


def _local_time(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"modifiedAt: {text!r} is not a date-time") from None
    if moment.tzinfo is not None:
        raise QueryError("modifiedAt takes the tenant's local time, without an offset")
    return moment.isoformat(timespec="milliseconds")


def _period(text: str) -> tuple[str | None, str | None]:
    comparator, _, rest = text.partition(",")
    if comparator == "since" and rest:
        return _local_time(rest), None
    if comparator == "until" and rest:
        return None, _local_time(rest)
    if comparator == "between" and rest.count(",") == 1:
        low, high = rest.split(",")
        return _local_time(low), _local_time(high)
    raise QueryError("modifiedAt takes since,<time>, until,<time> or between,<time>,<time>")


def _boolean(key: str, text: str) -> bool:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    raise QueryError(f"{key} takes true or false")


def _paging(text: str) -> tuple[int, int]:
    try:
        offset, limit = (int(part) for part in text.split(","))
    except ValueError:
        raise QueryError("paging takes offset,limit") from None
    if offset < 0 or not 0 <= limit <= MAX_LIMIT:
        raise QueryError(f"paging: offset must be >= 0 and limit between 0 and {MAX_LIMIT}")
    return offset, limit

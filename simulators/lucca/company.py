"""One simulated Lucca tenant: its users in the exact v3 shape, and the changes HR makes to them.

Users are stored as the dicts `GET /api/v3/users` returns with every field projected, so a page
renders by picking keys. Every mutation stamps the user's `modifiedAt` with the company's local
time and returns the webhook events Lucca would emit for it (see `webhooks.py`).

A deleted user vanishes, and the users it managed keep pointing at its id: the sync has to
cope with a manager who is gone.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from simulators.lucca import webhooks
from simulators.lucca.clock import Clock, utc_now
from simulators.lucca.faults import DEFAULT_RATE_LIMIT, Faults, RateLimiter, RequestLog
from simulators.lucca.registry import Registry as Registry
from simulators.lucca.v3 import (
    UNSET,
    Department,
    HiddenSections,
    LegalEntity,
    UnknownEntity,
    Unset,
    check_period,
    parse_day,
    stored_extension,
    v3_date,
)
from simulators.lucca.webhooks import Event, ResourceIds

User = dict[str, Any]
DEFAULT_TIMEZONE = "Europe/Paris"
DEFAULT_SKIP_CODE = "e_skip_elevo_sync"
MAX_KEPT_EVENTS: Final = 50_000


# v3 field -> v5 employee attribute (login has no v5 counterpart but still is an employee edit).
_EMPLOYEE_FIELDS: Final = {
    "firstName": "givenName",
    "lastName": "familyName",
    "mail": "email",
    "login": "login",
    "employeeNumber": "employeeNumber",
}


class Company:
    """The directory of one Lucca subdomain, with the HTTP-side state of that domain."""

    def __init__(
        self,
        subdomain: str,
        api_key: str,
        *,
        timezone: str = DEFAULT_TIMEZONE,
        clock: Clock = utc_now,
        principal: str = "Elevo sync",
        skip_code: str = DEFAULT_SKIP_CODE,
        rate_limit: int | None = DEFAULT_RATE_LIMIT,
    ) -> None:
        self.subdomain = subdomain
        self.api_key = api_key
        self.tz = ZoneInfo(timezone)
        self.clock = clock
        self.principal = principal
        self.skip_code = skip_code
        self.source = webhooks.source_url(subdomain)
        self.departments: dict[int, Department] = {}
        self.legal_entities: dict[int, LegalEntity] = {}
        self.faults = Faults()
        self.requests = RequestLog()
        self.limiter = RateLimiter(rate_limit)
        # Bumped on every change, so readers can cache what they derived from the users.
        self.version = 0
        self._users: dict[int, User] = {}
        self._sorted: list[User] | None = None
        self._hidden = HiddenSections()
        self._resource_ids: dict[int, ResourceIds] = {}
        self._next_resource = itertools.count(1)
        self._next_value = itertools.count(9000)
        # The events emitted, oldest first: what `/lucca-api/events` lists and endpoints get.
        # Lucca keeps two months of them; a long benchmark keeps the last MAX_KEPT_EVENTS.
        self.emitted: list[Event] = []
        self.emitted_dropped = 0  # how many older events were let go

    # -- reading -----------------------------------------------------------------------------

    def local_now(self) -> datetime:
        return self.clock().astimezone(self.tz).replace(tzinfo=None)

    def today(self) -> date:
        return self.local_now().date()

    def local_timestamp(self) -> str:
        """`modifiedAt` format: local time, no offset, milliseconds."""
        return self.local_now().isoformat(timespec="milliseconds")

    def __len__(self) -> int:
        return len(self._users)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._users

    def user(self, user_id: int) -> User:
        try:
            return self._users[user_id]
        except KeyError:
            raise UnknownEntity(f"no user {user_id} in {self.subdomain}") from None

    def find(self, user_id: int) -> User | None:
        return self._users.get(user_id)

    def users(self) -> list[User]:
        """Every user, former ones included, sorted by id (cached until a hire or delete)."""
        if self._sorted is None:
            self._sorted = [self._users[k] for k in sorted(self._users)]
        return self._sorted

    def hidden_sections(self) -> list[str]:
        return self._hidden.codes()

    # -- building (no events: this is the state before the story starts) ----------------------

    def add_department(self, name: str, dept_id: int | None = None) -> Department:
        ident = dept_id if dept_id is not None else max(self.departments, default=0) + 1
        self.departments[ident] = Department(ident, name)
        return self.departments[ident]

    def add_legal_entity(self, name: str, entity_id: int | None = None) -> LegalEntity:
        ident = entity_id if entity_id is not None else max(self.legal_entities, default=0) + 1
        self.legal_entities[ident] = LegalEntity(ident, name)
        return self.legal_entities[ident]

    def load(self, users: Iterable[User]) -> None:
        """Add users already in the v3 shape, as they are (the generator's bulk path)."""
        for user in users:
            self._users[user["id"]] = user
        self._changed(membership=True)

    def next_value_id(self) -> int:
        """A fresh id for an `extendedData` value."""
        return next(self._next_value)

    def user_ref(self, user_id: int, first: str, last: str) -> dict[str, Any]:
        return {"id": user_id, "name": f"{first} {last}", "url": self._url("users", user_id)}

    def department_ref(self, dept_id: int) -> dict[str, Any]:
        dept = self._department(dept_id)
        return {"id": dept.id, "name": dept.name, "url": self._url("departments", dept.id)}

    def legal_entity_ref(self, entity_id: int) -> dict[str, Any]:
        entity = self.legal_entities.get(entity_id)
        if entity is None:
            raise UnknownEntity(f"no legal entity {entity_id} in {self.subdomain}")
        return {"id": entity.id, "name": entity.name, "url": self._url("legalentities", entity.id)}

    # -- mutations ----------------------------------------------------------------------------

    def hire(
        self,
        first_name: str,
        last_name: str,
        *,
        start: date,
        department_id: int,
        job_title: str | None = None,
        mail: str | None = None,
        login: str | None = None,
        employee_number: str | None = None,
        manager_id: int | None = None,
        legal_entity_id: int | None = None,
        end: date | None = None,
        extended: dict[str, Any] | None = None,
        user_id: int | None = None,
    ) -> list[Event]:
        """Add an employee; `user_id` defaults to the next id (read it from the events)."""
        ident = user_id if user_id is not None else max(self._users, default=0) + 1
        if ident in self._users:
            raise ValueError(f"user {ident} already exists")
        check_period(start, end)
        entity_id = legal_entity_id if legal_entity_id is not None else self._default_entity()
        user: User = {
            "id": ident,
            "firstName": first_name,
            "lastName": last_name,
            "mail": mail,
            "login": login,
            "jobTitle": job_title,
            "employeeNumber": employee_number,
            "dtContractStart": v3_date(start),
            "dtContractEnd": v3_date(end),
            "modifiedAt": self.local_timestamp(),
            "manager": (
                self.user_ref(ident, first_name, last_name)
                if manager_id == ident
                else self._manager_ref(manager_id)
            ),
            "department": self.department_ref(department_id),
            "legalEntity": self.legal_entity_ref(entity_id),
            "extendedData": {},
        }
        self._users[ident] = user
        values = {self.skip_code: False, **(extended or {})}
        for code, value in values.items():
            stored = stored_extension(value, None, self.next_value_id, bare=False)
            self._hidden.store(user, code, stored)
        self._changed(membership=True)
        ids, today = self._ids(ident), self.today()
        return [
            self._emit(topic, build(user, self.source, today, ids))
            for topic, build in (
                ("employee.created", webhooks.employee_data),
                ("employment.created", webhooks.employment_data),
                ("job-position.created", webhooks.job_position_data),
            )
        ]

    def update(self, user_id: int, **fields: str | None) -> list[Event]:
        """Change names, mail, login or employeeNumber (v3 names): `employee.updated`."""
        unknown = set(fields) - set(_EMPLOYEE_FIELDS)
        if unknown:
            raise ValueError(f"update takes {sorted(_EMPLOYEE_FIELDS)}, not {sorted(unknown)}")
        user = self.user(user_id)
        changed = {k: v for k, v in fields.items() if user.get(k) != v}
        if not changed:
            return []
        previous = {_EMPLOYEE_FIELDS[k]: user.get(k) for k in changed}
        user.update(changed)
        self._touch(user)
        if "firstName" in changed or "lastName" in changed:
            self._rename_manager(user)
        data = webhooks.employee_data(user, self.source, self.today(), self._ids(user_id))
        return [self._emit("employee.updated", data, previous)]

    def set_job(
        self,
        user_id: int,
        *,
        job_title: str | Unset | None = UNSET,
        manager_id: int | Unset | None = UNSET,
        department_id: int | Unset = UNSET,
    ) -> list[Event]:
        """Change title, manager (None: no manager) or department: `job-position.updated`."""
        user = self.user(user_id)
        before = webhooks.job_position_data(user, self.source, self.today(), self._ids(user_id))
        new: dict[str, Any] = {}
        if job_title is not UNSET and job_title != user.get("jobTitle"):
            new["jobTitle"] = job_title
        if manager_id is not UNSET and manager_id != _ref_id(user.get("manager")):
            new["manager"] = self._manager_ref(manager_id)
        if department_id is not UNSET and department_id != _ref_id(user.get("department")):
            new["department"] = self.department_ref(department_id)
        if not new:
            return []
        user.update(new)
        self._touch(user)
        updated = list(new)
        data = webhooks.job_position_data(
            user, self.source, self.today(), self._ids(user_id), updated
        )
        return [self._emit("job-position.updated", data, {k: before[k] for k in updated})]

    def set_contract(
        self,
        user_id: int,
        *,
        start: date | Unset = UNSET,
        end: date | Unset | None = UNSET,
    ) -> list[Event]:
        """Change the contract dates; a departure is an end date (last day, inclusive)."""
        user = self.user(user_id)
        before = webhooks.employment_data(user, self.source, self.today(), self._ids(user_id))
        new_start = parse_day(user["dtContractStart"]) if start is UNSET else start
        new_end = parse_day(user.get("dtContractEnd")) if end is UNSET else end
        if new_start is None:
            raise ValueError(f"user {user_id} has no contract start")
        check_period(new_start, new_end)
        new = {"dtContractStart": v3_date(new_start), "dtContractEnd": v3_date(new_end)}
        changed = {k: v for k, v in new.items() if user.get(k) != v}
        if not changed:
            return []
        user.update(changed)
        self._touch(user)
        data = webhooks.employment_data(user, self.source, self.today(), self._ids(user_id))
        keys = [{"dtContractStart": "start", "dtContractEnd": "end"}[k] for k in changed]
        return [self._emit("employment.updated", data, {k: before[k] for k in keys})]

    def set_extension(
        self, user_id: int, code: str, value: Any, *, bare: bool = False
    ) -> list[Event]:
        """Set an HR-file field (`e_*` or the exclusion checkbox): `employee-extension.*`.

        A plain value is stored as `{"id", "value"}`, a list as a list of those; `bare=True`
        stores the value as it is, as some tenants return it.
        """
        user = self.user(user_id)
        existed, old = self._hidden.lookup(user, code)
        stored = stored_extension(value, old, self.next_value_id, bare=bare)
        if existed and stored == old:
            return []
        self._hidden.store(user, code, stored)
        self._touch(user)
        data = webhooks.extension_data(user_id, code, stored, self.source)
        if not existed:
            return [self._emit("employee-extension.created", data)]
        previous = {"value": webhooks.unwrap_extension(old)}
        return [self._emit("employee-extension.updated", data, previous)]

    def rename_department(self, dept_id: int, name: str) -> list[Event]:
        """Rename a department: every member's `department.name` and `modifiedAt` change."""
        dept = self._department(dept_id)
        if dept.name == name:
            return []
        previous = {"name": dept.name}
        dept.name = name
        for user in self._users.values():
            member = user.get("department")
            if member is not None and member["id"] == dept_id:
                member["name"] = name
                self._touch(user)
        self._changed()
        return [self._emit("department.updated", webhooks.department_data(dept_id, name), previous)]

    def delete(self, user_id: int) -> list[Event]:
        """Remove a user entirely: not even `formerEmployees=true` returns it."""
        self.user(user_id)
        del self._users[user_id]
        self._hidden.forget(user_id)
        self._resource_ids.pop(user_id, None)
        self._changed(membership=True)
        return [self._emit("employee.deleted", webhooks.ref(self.source, "employee", user_id))]

    def hide_extension_section(self, code: str) -> None:
        """The API key's role lost access to `code`: it leaves every user's `extendedData`."""
        if self._hidden.hide(code, self._users.values()):
            self._changed()

    def show_extension_section(self, code: str) -> None:
        """Give the access back: the values (kept meanwhile, edits included) reappear."""
        if self._hidden.show(code, self._users):
            self._changed()

    # -- internals ----------------------------------------------------------------------------

    def _url(self, collection: str, ident: int) -> str:
        return f"{self.source}/api/v3/{collection}/{ident}"

    def _department(self, dept_id: int) -> Department:
        dept = self.departments.get(dept_id)
        if dept is None:
            raise UnknownEntity(f"no department {dept_id} in {self.subdomain}")
        return dept

    def _default_entity(self) -> int:
        if not self.legal_entities:
            self.add_legal_entity(f"{self.subdomain.capitalize()} SAS")
        return next(iter(self.legal_entities))

    def _manager_ref(self, manager_id: int | None) -> dict[str, Any] | None:
        if manager_id is None:
            return None
        manager = self.user(manager_id)
        return self.user_ref(manager_id, manager["firstName"], manager["lastName"])

    def _rename_manager(self, manager: User) -> None:
        # The reports' own records did not change, so their modifiedAt stays.
        name = f"{manager['firstName']} {manager['lastName']}"
        for user in self._users.values():
            ref = user.get("manager")
            if ref is not None and ref["id"] == manager["id"]:
                ref["name"] = name

    def _ids(self, user_id: int) -> ResourceIds:
        ids = self._resource_ids.get(user_id)
        if ids is None:
            ids = ResourceIds(next(self._next_resource), next(self._next_resource))
            self._resource_ids[user_id] = ids
        return ids

    def _touch(self, user: User) -> None:
        user["modifiedAt"] = self.local_timestamp()
        self._changed()

    def _changed(self, *, membership: bool = False) -> None:
        self.version += 1
        if membership:
            self._sorted = None

    def _emit(self, topic: str, data: Event, previous: dict[str, Any] | None = None) -> Event:
        event = webhooks.make_event(
            topic, data, subdomain=self.subdomain, occurred_at=self.clock(), previous=previous
        )
        self.emitted.append(event)
        if len(self.emitted) > MAX_KEPT_EVENTS:
            dropped = len(self.emitted) // 2
            del self.emitted[:dropped]
            self.emitted_dropped += dropped
        return event


def _ref_id(ref: dict[str, Any] | None) -> int | None:
    return None if ref is None else int(ref["id"])

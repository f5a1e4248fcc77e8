"""Seeded random HR changes, valid against a mirror of the directory the maker keeps."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from bench.chaos.options import SKIP_FIELD, TENANT
from simulators.lucca.generator import FIRST_NAMES, JOB_TITLES, LANGUAGES, LAST_NAMES
from simulators.lucca.webhooks import Event


@dataclass
class Person:
    id: int
    first: str
    last: str
    start: date
    end: date | None
    excluded: bool
    department: int | None
    deleted: bool = False


def _day(v3: str | None) -> date | None:
    return None if v3 is None else date.fromisoformat(v3[:10])


def _unwrap(stored: Any) -> Any:
    return stored.get("value") if isinstance(stored, dict) else stored


@dataclass
class Change:
    kind: str
    body: dict[str, Any]
    apply: Callable[[list[Event]], None]


class ChangeMaker:
    """Seeded random HR changes, valid against a mirror of the directory it keeps up to date."""

    WEIGHTS: Mapping[str, int] = {
        "rename": 12, "title": 10, "manager": 10, "department": 7, "cost_center": 7,
        "remote": 3, "languages": 3, "mail": 3, "employee_number": 2, "hire": 8,
        "future_hire": 2, "departure_past": 7, "departure_today": 1, "departure_future": 4,
        "rehire": 5, "start_date": 2, "exclude": 4, "unexclude": 4, "delete": 2,
        "department_rename": 1,
    }  # fmt: skip

    def __init__(self, dump: Mapping[str, Any], rng: random.Random) -> None:
        self.rng = rng
        self.today = date.fromisoformat(dump["today"])
        self.departments = {int(d["id"]): str(d["name"]) for d in dump["departments"]}
        self.people: dict[int, Person] = {}
        for user in dump["users"]:
            start = _day(user.get("dtContractStart")) or self.today
            department = user.get("department")
            self.people[int(user["id"])] = Person(
                id=int(user["id"]),
                first=user["firstName"],
                last=user["lastName"],
                start=start,
                end=_day(user.get("dtContractEnd")),
                excluded=_unwrap((user.get("extendedData") or {}).get(SKIP_FIELD)) is True,
                department=int(department["id"]) if department else None,
            )
        self._serial = 0
        self._kinds = list(self.WEIGHTS)
        self._weights = [self.WEIGHTS[k] for k in self._kinds]

    def next(self) -> Change | None:
        kind = self.rng.choices(self._kinds, self._weights)[0]
        make: Callable[[], Change | None] = getattr(self, f"_{kind}")
        return make()

    # -- helpers ---------------------------------------------------------------------------

    def _alive(self, keep: Callable[[Person], bool] = lambda p: True) -> Person | None:
        candidates = [p for p in self.people.values() if not p.deleted and keep(p)]
        return self.rng.choice(candidates) if candidates else None

    def _fresh(self) -> int:
        self._serial += 1
        return self._serial

    def _new_mail(self, first: str, last: str) -> str:
        local = "".join(c for c in f"{first}.{last}".lower() if c.isascii() and c not in " '")
        return f"{local}.{self._fresh()}@{TENANT}.example"

    @staticmethod
    def _noop(_: list[Event]) -> None:
        return None

    # -- one method per kind -----------------------------------------------------------------

    def _rename(self) -> Change | None:
        p = self._alive()
        if p is None:
            return None
        if self.rng.random() < 0.5:
            first = self.rng.choice(FIRST_NAMES)
            return Change("rename", {"op": "update", "user_id": p.id, "firstName": first},
                          lambda _: setattr(p, "first", first))  # fmt: skip
        last = self.rng.choice(LAST_NAMES)
        if self.rng.random() < 0.2:  # a double-barrelled name
            last = f"{last}-{self.rng.choice(LAST_NAMES)}"
        return Change("rename", {"op": "update", "user_id": p.id, "lastName": last},
                      lambda _: setattr(p, "last", last))  # fmt: skip

    def _title(self) -> Change | None:
        p = self._alive()
        if p is None:
            return None
        title = None if self.rng.random() < 0.05 else self.rng.choice(JOB_TITLES)
        return Change("title", {"op": "set_job", "user_id": p.id, "job_title": title}, self._noop)

    def _manager(self) -> Change | None:
        p, boss = self._alive(), self._alive()
        if p is None or boss is None:
            return None
        roll = self.rng.random()
        # Cycles are allowed; a few become roots: self-managed (as Lucca imports do) or none.
        manager = p.id if roll < 0.02 else None if roll < 0.05 else boss.id
        body = {"op": "set_job", "user_id": p.id, "manager_id": manager}
        return Change("manager", body, self._noop)

    def _department(self) -> Change | None:
        p = self._alive()
        if p is None:
            return None
        dept = self.rng.choice(list(self.departments))
        body = {"op": "set_job", "user_id": p.id, "department_id": dept}
        return Change("department", body, lambda _: setattr(p, "department", dept))

    def _extension(self, kind: str, code: str, value: Any) -> Change | None:
        p = self._alive()
        if p is None:
            return None
        body = {"op": "set_extension", "user_id": p.id, "code": code, "value": value}
        return Change(kind, body, self._noop)

    def _cost_center(self) -> Change | None:
        value = None if self.rng.random() < 0.05 else f"CC-{self.rng.randint(10, 99)}"
        return self._extension("cost_center", "e_cost_center", value)

    def _remote(self) -> Change | None:
        return self._extension("remote", "e_remote", self.rng.random() < 0.5)

    def _languages(self) -> Change | None:
        spoken = self.rng.sample(LANGUAGES, self.rng.randint(0, 3))
        return self._extension("languages", "e_languages", spoken)

    def _mail(self) -> Change | None:
        p = self._alive()
        if p is None:
            return None
        body = {"op": "update", "user_id": p.id, "mail": self._new_mail(p.first, p.last)}
        return Change("mail", body, self._noop)

    def _employee_number(self) -> Change | None:
        p = self._alive()
        if p is None:
            return None
        number = f"{self.rng.randint(0, 99999):05d}"
        body = {"op": "update", "user_id": p.id, "employeeNumber": number}
        return Change("employee_number", body, self._noop)

    def _hire(self, *, future: bool = False) -> Change | None:
        boss = self._alive(lambda p: not p.excluded)
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        offset = self.rng.randint(1, 45) if future else -self.rng.randint(0, 5)
        start = self.today + timedelta(days=offset)
        dept = self.rng.choice(list(self.departments))
        serial = self._fresh()
        body = {
            "op": "hire", "first_name": first, "last_name": last, "start": start.isoformat(),
            "department_id": dept, "job_title": self.rng.choice(JOB_TITLES),
            "mail": self._new_mail(first, last), "login": f"chaos{serial}",
            "employee_number": f"H{serial:05d}",
            "manager_id": boss.id if boss else None,
            "extended": {"e_cost_center": f"CC-{self.rng.randint(10, 99)}",
                         "e_remote": self.rng.random() < 0.4},
        }  # fmt: skip

        def apply(events: list[Event]) -> None:
            ident = int(events[0]["data"]["id"])
            self.people[ident] = Person(ident, first, last, start, None, False, dept)

        return Change("future_hire" if future else "hire", body, apply)

    def _future_hire(self) -> Change | None:
        return self._hire(future=True)

    def _contract(self, kind: str, p: Person | None, **dates: date | None) -> Change | None:
        if p is None:
            return None
        body: dict[str, Any] = {"op": "set_contract", "user_id": p.id}
        body |= {k: None if v is None else v.isoformat() for k, v in dates.items()}

        def apply(_: list[Event]) -> None:
            p.start = dates.get("start", p.start) or p.start
            p.end = dates.get("end", p.end)

        return Change(kind, body, apply)

    def _departure_past(self) -> Change | None:
        p = self._alive(lambda q: q.start < self.today - timedelta(days=1) and q.end is None)
        if p is None:
            return None
        end = max(p.start, self.today - timedelta(days=self.rng.randint(1, 30)))
        return self._contract("departure_past", p, end=end)

    def _departure_today(self) -> Change | None:
        p = self._alive(lambda q: q.start <= self.today and q.end is None)
        return self._contract("departure_today", p, end=self.today)

    def _departure_future(self) -> Change | None:
        p = self._alive(lambda q: q.end is None)
        if p is None:
            return None
        end = max(p.start, self.today + timedelta(days=self.rng.randint(1, 60)))
        return self._contract("departure_future", p, end=end)

    def _rehire(self) -> Change | None:
        p = self._alive(lambda q: q.end is not None)
        if p is None:
            return None
        if self.rng.random() < 0.5:  # the end date withdrawn
            return self._contract("rehire", p, end=None)
        return self._contract("rehire", p, start=self.today, end=None)  # a new contract

    def _start_date(self) -> Change | None:
        p = self._alive(lambda q: q.end is None)
        if p is None:
            return None
        start = p.start - timedelta(days=self.rng.randint(1, 30))
        return self._contract("start_date", p, start=start)

    def _skip(self, kind: str, value: bool) -> Change | None:
        p = self._alive(lambda q: q.excluded is not value)
        if p is None:
            return None
        body = {"op": "set_extension", "user_id": p.id, "code": SKIP_FIELD, "value": value}
        return Change(kind, body, lambda _: setattr(p, "excluded", value))

    def _exclude(self) -> Change | None:
        return self._skip("exclude", True)

    def _unexclude(self) -> Change | None:
        return self._skip("unexclude", False)

    def _delete(self) -> Change | None:
        p = self._alive()
        if p is None:
            return None
        return Change("delete", {"op": "delete", "user_id": p.id},
                      lambda _: setattr(p, "deleted", True))  # fmt: skip

    def _department_rename(self) -> Change | None:
        dept = self.rng.choice(list(self.departments))
        name = f"{self.departments[dept].split(' #')[0]} #{self._fresh()}"

        def apply(_: list[Event]) -> None:
            self.departments[dept] = name

        body = {"op": "rename_department", "dept_id": dept, "name": name}
        return Change("department_rename", body, apply)

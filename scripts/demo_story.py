"""The demo's story: about twenty changes HR makes in Lucca, each with what Elevo should show."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from demo_support import (
    TENANT,
    Directory,
    ElevoWatch,
    field_is,
    managed_active,
    released,
    suspended,
)

from app.clients.elevo import ElevoClient
from app.core import scim
from simulators.lucca.webhooks import Event, leave_created_event
from stack.lucca_control import LuccaControl
from stack.ports import Probe

SKIP = "e_skip_elevo_sync"
Events = Callable[[], Awaitable[list[Event]]]


@dataclass
class Change:
    label: str
    user: str
    events: Events
    expect: Probe | None = None  # None: nothing to see in Elevo


class Story:
    """About twenty changes HR makes in Lucca, each with what Elevo should show afterwards."""

    def __init__(self, lucca: LuccaControl, elevo: ElevoClient, directory: Directory) -> None:
        self.lucca, self.dir, self.watch = lucca, directory, ElevoWatch(elevo, directory)
        self.sent: dict[str, list[Event]] = {}
        self.hired: dict[str, tuple[str, str | None]] = {}  # id -> name, department

    def do(self, key: str, op: str, uid: str, **arguments: Any) -> Events:
        """Apply one mutation in Lucca when played; the webhook events it emits."""

        async def run() -> list[Event]:
            body = arguments if op == "rename_department" else {"user_id": int(uid), **arguments}
            self.sent[key] = await self.lucca.mutate(op, **body)
            return self.sent[key]

        return run

    def hire(self, key: str, uid: str, name: str, boss: str, first_day: date) -> Change:
        first, last = name.split()
        boss_name, dept = self.hired.get(boss) or (
            self.dir.name(boss),
            self.dir.users[boss].department_id,
        )
        self.hired[uid] = (name, dept)
        hiring = self.do(
            key, "hire", uid, first_name=first, last_name=last, start=first_day.isoformat(),
            department_id=int(dept or 0), job_title="Product designer", manager_id=int(boss),
            mail=self.dir.fresh_mail(first, last), login=f"{first[0]}{last}{uid}".lower(),
            employee_number=f"{uid:0>5}", extended={"e_cost_center": "CC-42"},
        )  # fmt: skip
        label = f"hire {name} under {boss_name}"
        if first_day > self.dir.today:
            label = f"hire {name}, starting {first_day}"
        return Change(label, uid, hiring, self.watch.reports_to(uid, boss))

    def changes(self, rng: random.Random) -> list[Change]:
        d, w, today = self.dir, self.watch, self.dir.today
        boss = d.pick(rng, lambda u: d.synced(u) and len(d.reports.get(u, [])) >= 2)
        h1, h2, h3 = (str(max(map(int, d.items)) + n) for n in (1, 2, 3))
        dep, fut, ren, job, tick, cost, gone, mail, begin, move, num = (
            d.pick(rng, d.leaf) for _ in range(11)
        )
        mgr = d.pick(rng, lambda u: d.leaf(u) and d.users[u].manager_id != boss)
        untick = d.pick(rng, d.excluded_active, fallback=tick)  # fallback: released, taken back
        rehire = d.pick(rng, d.former, fallback=dep)  # fallback: the departure, reactivated
        in_use = [k for k in d.departments if any(d.synced(u) for u in d.members(k))]
        dept = min(in_use, key=lambda k: (len(d.members(k)), int(k)))
        dept_name = f"{d.departments[dept]} Europe"
        target = next(k for k in d.departments if k not in (dept, d.users[move].department_id))
        surname = f"{d.users[ren].last_name}-Moreau"
        title = "Responsable produit" if d.users[job].job_title != "Responsable produit" else "CTO"
        address = d.fresh_mail(d.users[mail].first_name or "x", "pro")
        new_start = (d.users[begin].contract_start or today) - timedelta(days=14)
        number = f"X{d.users[num].employee_number or num}"
        yesterday, in_30_days = today - timedelta(days=1), today + timedelta(days=30)
        return [
            self.hire("hire", h1, "Lucie Fontaine", boss, today),
            self.hire("hire2", h2, "Karim Benali", h1, today),
            Change(f"departure of {d.name(dep)} (last day yesterday)", dep,
                   self.do("dep", "set_contract", dep, end=yesterday.isoformat()),
                   w.shows(dep, suspended)),
            Change(f"{d.name(fut)} leaves on {in_30_days}", fut,
                   self.do("fut", "set_contract", fut, end=in_30_days.isoformat())),
            Change(f"{d.name(ren)} renamed {surname}", ren,
                   self.do("ren", "update", ren, lastName=surname),
                   w.shows(ren, field_is(scim.FAMILY_NAME, surname))),
            Change(f"{d.name(job)} becomes {title}", job,
                   self.do("job", "set_job", job, job_title=title),
                   w.shows(job, field_is(scim.TITLE, title))),
            Change(f"{d.name(mgr)} now reports to {d.name(boss)}", mgr,
                   self.do("mgr", "set_job", mgr, manager_id=int(boss)), w.reports_to(mgr, boss)),
            Change(f"department renamed {dept_name}", dept,
                   self.do("dept", "rename_department", dept, dept_id=int(dept), name=dept_name),
                   w.department_shows(dept, dept_name)),
            Change(f"{d.name(tick)} excluded from the sync", tick,
                   self.do("tick", "set_extension", tick, code=SKIP, value=True),
                   w.shows(tick, released)),
            Change(f"{d.name(untick)} no longer excluded", untick,
                   self.do("untick", "set_extension", untick, code=SKIP, value=False),
                   w.shows(untick, managed_active)),
            Change(f"cost center of {d.name(cost)} → CC-99", cost,
                   self.do("cost", "set_extension", cost, code="e_cost_center", value="CC-99"),
                   w.shows(cost, field_is(scim.custom_field_path("cost_center"), "CC-99"))),
            Change(f"rehire of {d.name(rehire)} (end date removed)", rehire,
                   self.do("rehire", "set_contract", rehire, end=None),
                   w.shows(rehire, managed_active)),
            Change(f"{d.name(gone)} deleted from Lucca", gone,
                   self.do("gone", "delete", gone), w.shows(gone, suspended)),
            Change(f"email of {d.name(mail)} → {address}", mail,
                   self.do("mail", "update", mail, mail=address),
                   w.shows(mail, field_is(scim.USER_NAME, address))),
            Change(f"contract start of {d.name(begin)} → {new_start}", begin,
                   self.do("begin", "set_contract", begin, start=new_start.isoformat()),
                   w.shows(begin, field_is(scim.WORK_START_DATE, new_start.isoformat()))),
            Change(f"{d.name(move)} moves to {d.departments[target]}", move,
                   self.do("move", "set_job", move, department_id=int(target)),
                   w.shows(move, field_is(scim.DEPARTMENT, d.departments[target]))),
            Change(f"employee number of {d.name(num)} → {number}", num,
                   self.do("num", "update", num, employeeNumber=number),
                   w.shows(num, field_is(scim.EMPLOYEE_NUMBER, number))),
            self.hire("hire3", h3, "Noémie Garnier", boss, today + timedelta(days=21)),
            Change("the job title event, delivered again", job, self.replay("job")),
            Change(f"leave.created for {d.name(job)} (irrelevant)", job, self.leave(job)),
        ]  # fmt: skip

    def replay(self, key: str) -> Events:
        async def run() -> list[Event]:
            return self.sent[key][-1:]

        return run

    def leave(self, uid: str) -> Events:
        async def run() -> list[Event]:
            return [leave_created_event(TENANT, employee_id=int(uid))]

        return run

"""The demo: a generated Lucca company synced into Elevo, then ~20 HR changes played live.

Run it through `scripts/demo`, which makes the venv and finds or starts a Redis. It starts the
Lucca simulator, scim2-server as Elevo and the service's web and worker processes (the
Procfile's lines), registers a tenant, runs a full sync, plays changes in Lucca (each delivered
as a signed webhook) while timing how long each takes to show in Elevo, and ends with a check
that Elevo holds what the sync rules say Lucca implies. Exits 0 only when that check passes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from demo_support import (
    ROOT,
    TENANT,
    Children,
    DemoError,
    Directory,
    ElevoWatch,
    LuccaControl,
    Out,
    Probe,
    Stack,
    all_profiles,
    consistency,
    counts_text,
    field_is,
    managed_active,
    percentile,
    released,
    suspended,
    wait_until,
)

from app.clients.elevo import ElevoClient
from app.core import scim
from app.secret import Secret
from simulators.lucca.webhooks import Event, WebhookSender, leave_created_event

SKIP = "e_skip_elevo_sync"
CUSTOM = {"cost_center": "extendedData.e_cost_center", "entity": "legalEntity.name"}
TIMEZONE = "Europe/Paris"
Events = Callable[[], Awaitable[list[Event]]]
# What a change's runs decided, most telling first ("superseded": a notice folded into another).
ACTIONS = ("create", "adopt", "reactivate", "update", "suspend", "release", "conflict", "error")


@dataclass
class Change:
    label: str
    user: str
    events: Events
    expect: Probe | None = None  # None: nothing to see in Elevo


@dataclass
class Tally:
    full_run: dict[str, Any] = field(default_factory=dict)
    lucca_after_full: dict[str, Any] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    changes: int = 0


# -- 1-3: the stack, the tenant, the full sync ---------------------------------------------------


async def start(args: argparse.Namespace, stack: Stack, out: Out) -> None:
    out.header("1. Starting Lucca (simulator), Elevo (scim2-server), the web process, the worker")
    await stack.start(args.size, args.seed)
    probes = stack.readiness()
    for child in stack.children.started:
        what = f"{child.name} answers"
        took = await wait_until(probes[child.name], what, within=60, children=stack.children)
        log = child.log.relative_to(ROOT) if child.log.is_relative_to(ROOT) else child.log
        out.line(f"  {child.name:<7} {child.url:<24} ready in {took:3.1f}s  log: {log}")
    await asyncio.sleep(0.3)  # one that lost its port to another program has exited by now
    stack.children.check_alive()


async def register_tenant(stack: Stack, out: Out) -> None:
    out.header(f"2. Registering the tenant: PUT /tenants/{TENANT}")
    lucca = {"subdomain": TENANT, "api_key": stack.api_key, "webhook_secret": stack.webhook_secret}
    body = {
        "lucca": lucca,
        "elevo": {"scim_url": stack.scim_url, "token": stack.scim_token},
        "skip_field": SKIP,
        "custom_fields": CUSTOM,
        "timezone": TIMEZONE,
    }
    url = f"{stack.url('web')}/tenants/{TENANT}"
    response = await stack.http.put(url, json=body, headers=stack.admin)
    if response.status_code not in (200, 201):
        raise DemoError(f"PUT /tenants/{TENANT} answered {response.status_code}: {response.text}")
    out.line(f"  {response.status_code}; the stored config, every secret redacted:")
    for key, value in response.json().items():
        out.line(f"    {key}: {json.dumps(value, ensure_ascii=False)}")


async def full_sync(stack: Stack, lucca: LuccaControl, out: Out, tally: Tally) -> None:
    users = len((await lucca.dump())["users"])
    out.header(f'3. Full sync of {users} Lucca users: POST /sync/{TENANT} {{"mode": "full"}}')
    started = time.monotonic()
    url = f"{stack.url('web')}/sync/{TENANT}"
    response = await stack.http.post(url, json={"mode": "full"}, headers=stack.admin)
    if response.status_code != 202:
        raise DemoError(f"POST /sync/{TENANT} answered {response.status_code}: {response.text}")
    out.line(f"  202, run {response.json()['run']}")
    run = await stack.run(response.json()["run"], within=600, progress=out.progress)
    took = time.monotonic() - started
    if run["state"] != "done":
        raise DemoError(f"the full run ended {run['state']}: {run.get('errors')}")
    tally.full_run = run | {"seconds": took}
    tally.lucca_after_full = await lucca.counters()
    out.line(
        f"  {run['state']} in {took:.1f}s: {run['processed']} users: {counts_text(run['counts'])}"
    )
    out.line(f"  Lucca requests so far: {tally.lucca_after_full['total']}")


# -- 4: the changes -----------------------------------------------------------------------------


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


async def play(stack: Stack, changes: list[Change], out: Out, tally: Tally) -> None:
    out.header(f"4. Playing {len(changes)} changes in Lucca, each delivered as a signed webhook")
    answers: list[dict[str, Any]] = []

    async def keep_answer(response: httpx.Response) -> None:
        await response.aread()
        answers.append(response.json() if response.status_code == 202 else {})

    url = f"{stack.url('web')}/webhooks/lucca/{TENANT}"
    async with httpx.AsyncClient(timeout=30, event_hooks={"response": [keep_answer]}) as client:
        sender = WebhookSender(client, url, stack.webhook_secret, retry_delays=(1.0, 5.0))
        if not await sender.activate():
            raise DemoError("the webhook endpoint did not echo Lucca's activation request")
        out.line(f"  {url} activated; per change: topic, HTTP status, decision, Elevo")
        for number, change in enumerate(changes, 1):
            answers.clear()
            label = change.label if len(change.label) <= 48 else change.label[:47] + "…"
            head = f"  {number:>2}. {label:<48}"
            events, first_202 = await change.events(), 0.0
            if not events:
                out.line(f"{head} (nothing changed in Lucca: no event)")
                continue
            codes: set[str] = set()
            for event in events:
                status = str((await sender.send(event)).attempts[-1].status)
                tally.statuses[status] += 1
                codes.add(status)
                first_202 = first_202 or (time.monotonic() if status == "202" else 0.0)
            topic = str(events[0]["topic"]) + (f" +{len(events) - 1}" if len(events) > 1 else "")
            code = "/".join(sorted(codes))
            stack.children.check_alive()
            out.progress(f"{head} {topic:<27} {code:<4} … waiting for Elevo")
            seen = await observe(stack, change, first_202 or time.monotonic(), tally)
            decided, note = await decisions(stack, change, answers)
            out.line(f"{head} {topic:<27} {code:<4} {decided:<10} {note or seen}")
            tally.changes += 1


async def observe(stack: Stack, change: Change, since: float, tally: Tally) -> str:
    """Wait until Elevo shows the change; the time since the first 202, as text."""
    if change.expect is None:
        return "no change expected in Elevo"
    try:
        await wait_until(change.expect, change.label, within=60, children=stack.children)
    except DemoError:
        tally.missed.append(f"{change.label}: not seen in Elevo within 60s")
        return "NOT SEEN in Elevo within 60s"
    took = time.monotonic() - since
    tally.latencies.append(took)
    return f"in Elevo after {took:.2f}s"


async def decisions(stack: Stack, change: Change, answers: list[dict[str, Any]]) -> tuple[str, str]:
    """What the runs the change's events started decided (or how the webhook took them), and
    a note when there is more to say than the Elevo latency."""
    runs = [a["run"] for a in answers if a.get("run")]
    if not runs:
        return "/".join(sorted({str(a.get("status")) for a in answers})), ""
    counts: Counter[str] = Counter()
    deadline = time.monotonic() + 5  # a notice deferred behind a busy user may take longer
    for run_id in runs:
        left = max(0.0, deadline - time.monotonic())
        counts.update((await stack.run(run_id, within=left, strict=False))["counts"])
    telling = [a for a in ACTIONS if a in counts]
    if not telling:  # a departure to come is re-checked once the contract has ended
        due = f"due:{TENANT}:{change.user}:*"
        async for _, score in stack.redis.zscan_iter("arq:queue", match=due):
            at = datetime.fromtimestamp(score / 1000, ZoneInfo(TIMEZONE))
            return "unchanged", f"Elevo unchanged; re-check queued for {at:%Y-%m-%d %H:%M}"
    return "+".join(telling) or "+".join(sorted(counts)) or "(pending)", ""


# -- 5: the summary -----------------------------------------------------------------------------


async def summary(
    stack: Stack, lucca: LuccaControl, elevo: ElevoClient, out: Out, tally: Tally
) -> bool:
    out.header("5. Summary")
    run, lat, sent = tally.full_run, tally.latencies, tally.statuses
    now, then = await lucca.counters(), tally.lucca_after_full
    by_id, listings = now["by_id"] - then["by_id"], now["listings"] - then["listings"]
    waits = await stack.metric("sync_lucca_budget_waits_total")
    rows = {
        "full run": f"{run['processed']} users in {run['seconds']:.1f}s: "
        + counts_text(run["counts"]),
        "changes": f"{tally.changes} played as {sum(sent.values())} webhooks; answers: "
        + ", ".join(f"{status} ({n})" for status, n in sorted(sent.items())),
        "latency": f"webhook 202 → Elevo over {len(lat)} observable changes: median "
        f"{statistics.median(lat or [0]):.2f}s, p95 {percentile(lat or [0], 95):.2f}s, "
        f"max {max(lat or [0]):.2f}s",
        "Lucca": f"{now['total']} requests: {then['total']} for the full run, {by_id} by id "
        f"and {listings} listing(s) for the changes; {waits:.0f} waited for the tenant's "
        f"budget (40/min, bursts of 10), {now['by_status'].get('429', 0)} answered 429",
    }
    report, profiles = await consistency(lucca, elevo, SKIP, CUSTOM)
    deadline = time.monotonic() + 20
    while not report.ok and time.monotonic() < deadline:  # a last write may still be landing
        await asyncio.sleep(0.5)
        report, profiles = await consistency(lucca, elevo, SKIP, CUSTOM)
    rows["consistency"] = (
        f"{report.checked} Lucca users against {profiles} Elevo profiles "
        f"({len(report.conflicts)} userName conflict(s), left alone as the rules say)"
    )
    for name, text in rows.items():
        out.line(f"  {name:<12} {text}", always=True)
    out.line(f"  mismatches: {len(report.mismatches) + len(tally.missed)}", always=True)
    for problem in [*report.mismatches, *tally.missed]:
        out.line(f"    - {problem}", always=True)
    return report.ok and not tally.missed


# -- main -----------------------------------------------------------------------------------------


async def demo(args: argparse.Namespace, children: Children, out: Out) -> int:
    async with httpx.AsyncClient(timeout=30) as http:
        stack = Stack(http, children, args.redis_url)
        try:
            await start(args, stack, out)
            await register_tenant(stack, out)
            lucca = LuccaControl(http, stack.url("lucca"))
            elevo = ElevoClient(http, stack.scim_url, Secret(stack.scim_token))
            tally = Tally()
            await full_sync(stack, lucca, out, tally)
            managed = {p.external_id or "" for p in await all_profiles(elevo) if managed_active(p)}
            story = Story(lucca, elevo, Directory(await lucca.dump(), SKIP, managed))
            await play(stack, story.changes(random.Random(args.seed)), out, tally)
            ok = await summary(stack, lucca, elevo, out, tally)
            if args.keep:
                await stack.keep(lambda text: out.line(text, always=True))
            return 0 if ok else 1
        finally:
            await stack.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200, help="people in the generated company")
    parser.add_argument("--keep", action="store_true", help="leave the services running")
    parser.add_argument("--quiet", action="store_true", help="print the summary only")
    parser.add_argument("--seed", type=int, default=1, help="seed of the company and the story")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("DEMO_REDIS_URL", "redis://127.0.0.1:6379/5"),
        help="a Redis database the demo may empty (scripts/demo passes it)",
    )
    parser.add_argument("--run-dir", type=Path, default=ROOT / ".demo", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    out = Out(quiet=args.quiet)
    children = Children(args.run_dir / "logs")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill stops the children too
    try:
        if children.stop_leftovers():
            out.line("(stopped the processes an earlier demo left running)", always=True)
        return asyncio.run(demo(args, children, out))
    except KeyboardInterrupt:
        out.line("\ninterrupted: stopping everything the demo started", always=True)
        return 130
    except DemoError as exc:
        out.line(f"\ndemo failed: {exc}", always=True)
        return 1
    finally:
        children.stop_all()


if __name__ == "__main__":
    sys.exit(main())

"""The demo: a generated Lucca company synced into Elevo, then ~20 HR changes played live.

Run through `scripts/demo` (it makes the venv and finds or starts a Redis). Starts the Lucca
simulator, scim2-server as Elevo, and the service's web and worker processes (the Procfile's
lines), registers a tenant, runs a full sync, plays changes as signed Lucca webhooks while
timing how long each takes to show in Elevo, and ends with a consistency check of Elevo
against what the sync rules say Lucca implies. Exits 0 only when that check passes.
"""

from __future__ import annotations

import argparse
import random
import asyncio
import json
import os
import secrets
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import redis.asyncio as aioredis
from cryptography.fernet import Fernet
from demo_support import (
    ROOT,
    VENV_BIN,
    Children,
    DemoError,
    Directory,
    LuccaControl,
    Out,
    free_port,
    percentile,
    procfile_command,
    wait_until,
)

from app.core import scim
from app.core.profile import ElevoProfile
from app.elevo import ElevoClient
from app.secret import Secret
from simulators.consistency import Report, check
from simulators.lucca.webhooks import Event, WebhookSender, leave_created_event

TENANT = "acme"
SKIP = "e_skip_elevo_sync"
CUSTOM = {"cost_center": "extendedData.e_cost_center", "entity": "legalEntity.name"}
Check = Callable[[ElevoProfile], bool]
Probe = Callable[[], Awaitable[bool]]


@dataclass
class Stack:
    """The running pieces, their addresses and the credentials that tie them together."""

    http: httpx.AsyncClient
    children: Children
    redis: aioredis.Redis
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    api_key: str = field(default_factory=lambda: f"lucca-{secrets.token_hex(12)}")
    scim_token: str = field(default_factory=lambda: f"elevo-{secrets.token_hex(12)}")
    webhook_secret: str = field(default_factory=lambda: f"whsec-{secrets.token_hex(16)}")
    ports: dict[str, int] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def scim_url(self) -> str:
        return f"{self.url('elevo')}/{TENANT}/v2"


@dataclass
class Change:
    label: str
    user: str
    events: Callable[[], Awaitable[list[Event]]]
    expect: Probe | None = None


@dataclass
class Tally:
    full_run: dict[str, Any] = field(default_factory=dict)
    lucca_after_full: dict[str, Any] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    changes: int = 0


# -- 1. the stack -----------------------------------------------------------------------------


async def start_stack(args: argparse.Namespace, stack: Stack, out: Out) -> None:
    out.header("1. Starting Lucca (simulator), Elevo (scim2-server), the web and the worker")
    await stack.redis.flushdb()  # the demo's own database only
    stack.ports = {name: free_port() for name in ("lucca", "elevo", "web", "metrics")}
    base = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    company = f"{TENANT}:{args.size}:{args.seed}:{stack.api_key}"
    lucca_argv = [sys.executable, "-m", "simulators.lucca", "--port", str(stack.ports["lucca"])]
    stack.children.start(
        "lucca", [*lucca_argv, "--company", company, "--rate-limit", "50"], base, stack.url("lucca")
    )
    contracts = ROOT / "contracts" / "elevo"
    scim_argv = [
        str(VENV_BIN / "scim2-server"),
        "--schema", str(contracts / "schemas.json"),
        "--resource-type", str(contracts / "resource-types.json"),
        "--bearer-token", stack.scim_token,
        "--dynamic-tenants",
        "--port", str(stack.ports["elevo"]),
    ]  # fmt: skip
    stack.children.start("elevo", scim_argv, base, stack.url("elevo"))
    env = base | {
        "REDIS_URL": args.redis_url,
        "ADMIN_TOKEN": stack.admin_token,
        "SECRETS_KEY": Fernet.generate_key().decode(),
        "LUCCA_URL_TEMPLATE": f"{stack.url('lucca')}/{{subdomain}}",
        "ALLOW_HTTP_ELEVO": "true",
        "PORT": str(stack.ports["web"]),
        "WORKER_METRICS_PORT": str(stack.ports["metrics"]),
        "LOG_LEVEL": "WARNING",
    }
    stack.children.start("web", procfile_command("web", env), env, stack.url("web"))
    stack.children.start("worker", procfile_command("worker", env), env, stack.url("metrics"))
    http, auth = stack.http, {"Authorization": f"Bearer {stack.scim_token}"}

    async def answers(url: str, headers: dict[str, str] | None = None) -> bool:
        return (await http.get(url, headers=headers)).status_code == 200

    async def worker_alive() -> bool:
        return bool(await stack.redis.exists("arq:queue:health-check"))

    probes: dict[str, Probe] = {
        "lucca": lambda: answers(f"{stack.url('lucca')}/_control/{TENANT}"),
        "elevo": lambda: answers(f"{stack.scim_url}/Users?count=1", auth),
        "web": lambda: answers(f"{stack.url('web')}/readyz"),
        "worker": worker_alive,
    }
    for child in stack.children.started:
        took = await wait_until(
            probes[child.name], f"{child.name} answers", timeout=60, children=stack.children
        )
        out.line(f"  {child.name:<7} {child.url:<24} ready in {took:4.1f}s  (log: {child.log})")


# -- 2. the tenant and 3. the full sync ---------------------------------------------------------


async def register_tenant(stack: Stack, out: Out) -> None:
    out.header(f"2. Registering the tenant: PUT /tenants/{TENANT}")
    body = {
        "lucca": {"subdomain": TENANT, "api_key": stack.api_key, "webhook_secret": stack.webhook_secret},
        "elevo": {"scim_url": stack.scim_url, "token": stack.scim_token},
        "skip_field": SKIP,
        "custom_fields": CUSTOM,
    }  # fmt: skip
    response = await stack.http.put(
        f"{stack.url('web')}/tenants/{TENANT}", json=body, headers=stack.admin
    )
    if response.status_code not in (200, 201):
        raise DemoError(f"PUT /tenants/{TENANT} answered {response.status_code}: {response.text}")
    out.line(f"  {response.status_code}, the stored config (secrets redacted):")
    for line in json.dumps(response.json(), indent=2, ensure_ascii=False).splitlines():
        out.line(f"    {line}")


async def wait_run(stack: Stack, run_id: str, out: Out, timeout: float) -> dict[str, Any]:
    url = f"{stack.url('web')}/sync/{TENANT}/runs/{run_id}"
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = (await stack.http.get(url, headers=stack.admin)).json()
        if run.get("state") in {"done", "failed", "held"}:
            return run
        if time.monotonic() > deadline:
            raise DemoError(f"run {run_id} still {run.get('state')} after {timeout:.0f}s")
        stack.children.check_alive()
        out.progress(f"  run {run_id}: {run.get('state')}, {run.get('processed', 0)} processed")
        await asyncio.sleep(0.2)


def counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{action} {n}" for action, n in sorted(counts.items(), key=lambda i: -i[1]))


async def full_sync(stack: Stack, lucca: LuccaControl, out: Out, tally: Tally) -> None:
    users = len((await lucca.dump())["users"])
    out.header(f'3. Full sync: POST /sync/{TENANT} {{"mode": "full"}} ({users} Lucca users)')
    started = time.monotonic()
    response = await stack.http.post(
        f"{stack.url('web')}/sync/{TENANT}", json={"mode": "full"}, headers=stack.admin
    )
    if response.status_code != 202:
        raise DemoError(f"POST /sync/{TENANT} answered {response.status_code}: {response.text}")
    run = await wait_run(stack, response.json()["run"], out, timeout=600)
    took = time.monotonic() - started
    if run["state"] != "done":
        raise DemoError(f"the full run ended {run['state']}: {run.get('errors')}")
    tally.full_run = run | {"seconds": took}
    tally.lucca_after_full = await lucca.counters()
    out.line(f"  run {run['id']}: {run['state']} in {took:.1f}s, {run['processed']} users")
    out.line(f"  {counts_text(run['counts'])}")
    out.line(f"  Lucca requests: {tally.lucca_after_full['total']}")


# -- 4. the changes -------------------------------------------------------------------------------


class Story:
    """About twenty changes HR makes in Lucca, each with what Elevo should then show."""

    def __init__(self, lucca: LuccaControl, elevo: ElevoClient, directory: Directory) -> None:
        self.lucca, self.elevo, self.dir = lucca, elevo, directory
        self.sent: dict[str, list[Event]] = {}

    async def profile(self, uid: str) -> ElevoProfile | None:
        return await self.elevo.find_by_external_id(uid)

    def shows(self, uid: str, want: Check) -> Probe:
        async def probe() -> bool:
            found = await self.profile(uid)
            return found is not None and want(found)

        return probe

    def reports_to(self, uid: str, manager: str) -> Probe:
        async def probe() -> bool:
            found, boss = await self.profile(uid), await self.profile(manager)
            return bool(found and boss and found.managed and found.active) and (
                found.attributes[scim.MANAGER] == boss.id  # type: ignore[union-attr]
            )

        return probe

    def dept_shows(self, dept_id: str, name: str) -> Probe:
        async def probe() -> bool:
            members = set(self.dir.members(dept_id))
            profiles = [p for p in await all_profiles(self.elevo) if p.external_id in members]
            managed = [p for p in profiles if p.managed]
            return bool(managed) and all(p.attributes[scim.DEPARTMENT] == name for p in managed)

        return probe

    def mutation(self, key: str, op: str, **arguments: Any) -> Callable[[], Awaitable[list[Event]]]:
        async def run() -> list[Event]:
            self.sent[key] = await self.lucca.mutate(op, **arguments)
            return self.sent[key]

        return run

    def changes(self, rng: Any) -> list[Change]:  # noqa: PLR0915 - one story, told in order
        d, today = self.dir, self.dir.today
        managed = lambda p: p.managed and p.active  # noqa: E731
        field_is = lambda path, value: lambda p: p.attributes.get(path) == value  # noqa: E731
        boss = d.pick(rng, lambda u: d.synced(u) and len(d.reports.get(u, [])) >= 2)
        dept = d.users[boss].department_id or next(iter(d.departments()))
        next_id = max(int(u) for u in d.items) + 1
        h1, h2, h3 = str(next_id), str(next_id + 1), str(next_id + 2)
        leaves = [d.pick(rng, d.leaf) for _ in range(14)]
        dep, fut, ren, job, mgr, tick, cost, gone, mail, start, move, num = leaves[:12]
        others = [k for k in d.departments() if k != dept and d.members(k)]
        renamed = min(others, key=lambda k: (len(d.members(k)), k))
        target = next(k for k in others if k not in (renamed, d.users[move].department_id))
        untick = d.pick(rng, lambda u: _excluded_active(d, u), fallback=tick)
        rehire = d.pick(rng, lambda u: _former(d, u), fallback=dep)
        new_names = {"mail": d.fresh_mail(d.users[mail].first_name or "x", "pro", "acme.example")}

        def hire(key: str, uid: str, first: str, last: str, manager: str, start: date) -> Change:
            events = self.mutation(
                key, "hire", first_name=first, last_name=last, start=start.isoformat(),
                department_id=int(dept), job_title="Product designer", user_id=int(uid),
                mail=d.fresh_mail(first, last, "acme.example"), login=f"{first[0]}{last}{uid}".lower(),
                employee_number=f"{uid:0>5}", manager_id=int(manager),
                extended={"e_cost_center": "CC-42"},
            )  # fmt: skip
            label = f"hire {first} {last}, reports to {_short(self, manager, h1)}"
            if start > today:
                label = f"future hire {first} {last} (starts {start})"
            return Change(label, uid, events, self.reports_to(uid, manager))

        last = f"{d.users[ren].last_name}-Moreau"
        title = "Responsable produit" if d.users[job].job_title != "Responsable produit" else "CTO"
        new_start = (d.users[start].contract_start or today) - timedelta(days=14)
        dept_name = f"{d.departments()[renamed]} & Innovation"
        number = f"X{d.users[num].employee_number or num}"
        return [
            hire("hire", h1, "Lucie", "Fontaine", boss, today),
            hire("hire2", h2, "Karim", "Benali", h1, today),
            Change(f"departure of {d.name(dep)} (last day yesterday)", dep,
                   self.mutation("dep", "set_contract", user_id=int(dep), end=_iso(today, -1)),
                   self.shows(dep, lambda p: p.managed and not p.active)),
            Change(f"future departure of {d.name(fut)} (in 30 days)", fut,
                   self.mutation("fut", "set_contract", user_id=int(fut), end=_iso(today, 30))),
            Change(f"rename: {d.name(ren)} → {last}", ren,
                   self.mutation("ren", "update", user_id=int(ren), lastName=last),
                   self.shows(ren, field_is(scim.FAMILY_NAME, last))),
            Change(f"job title of {d.name(job)} → {title}", job,
                   self.mutation("job", "set_job", user_id=int(job), job_title=title),
                   self.shows(job, field_is(scim.TITLE, title))),
            Change(f"{d.name(mgr)} now reports to {d.name(boss)}", mgr,
                   self.mutation("mgr", "set_job", user_id=int(mgr), manager_id=int(boss)),
                   self.reports_to(mgr, boss)),
            Change(f"department renamed: {dept_name}", f"d{renamed}",
                   self.mutation("dept", "rename_department", dept_id=int(renamed), name=dept_name),
                   self.dept_shows(renamed, dept_name)),
            Change(f"{d.name(tick)} excluded from Elevo sync", tick,
                   self.mutation("tick", "set_extension", user_id=int(tick), code=SKIP, value=True),
                   self.shows(tick, lambda p: not p.managed and p.active)),
            Change(f"{d.name(untick)} no longer excluded", untick,
                   self.mutation("untick", "set_extension", user_id=int(untick), code=SKIP,
                                 value=False),
                   self.shows(untick, managed)),
            Change(f"cost center of {d.name(cost)} → CC-99", cost,
                   self.mutation("cost", "set_extension", user_id=int(cost), code="e_cost_center",
                                 value="CC-99"),
                   self.shows(cost, field_is(scim.custom_field_path("cost_center"), "CC-99"))),
            Change(f"rehire of {d.name(rehire)} (end date removed)", rehire,
                   self.mutation("rehire", "set_contract", user_id=int(rehire), end=None),
                   self.shows(rehire, managed)),
            Change(f"{d.name(gone)} deleted from Lucca", gone,
                   self.mutation("gone", "delete", user_id=int(gone)),
                   self.shows(gone, lambda p: not p.active)),
            Change(f"email of {d.name(mail)} → {new_names['mail']}", mail,
                   self.mutation("mail", "update", user_id=int(mail), mail=new_names["mail"]),
                   self.shows(mail, field_is(scim.USER_NAME, new_names["mail"]))),
            Change(f"contract start of {d.name(start)} → {new_start}", start,
                   self.mutation("start", "set_contract", user_id=int(start),
                                 start=new_start.isoformat()),
                   self.shows(start, field_is(scim.WORK_START_DATE, new_start.isoformat()))),
            Change(f"{d.name(move)} moves to {d.departments()[target]}", move,
                   self.mutation("move", "set_job", user_id=int(move), department_id=int(target)),
                   self.shows(move, field_is(scim.DEPARTMENT, d.departments()[target]))),
            Change(f"employee number of {d.name(num)} → {number}", num,
                   self.mutation("num", "update", user_id=int(num), employeeNumber=number),
                   self.shows(num, field_is(scim.EMPLOYEE_NUMBER, number))),
            hire("hire3", h3, "Noémie", "Garnier", boss, today + timedelta(days=21)),
            Change("duplicate delivery of the job title event", job, self._again("job")),
            Change(f"leave.created for {d.name(job)} (irrelevant)", job, self._leave(job)),
        ]  # fmt: skip

    def _again(self, key: str) -> Callable[[], Awaitable[list[Event]]]:
        async def again() -> list[Event]:
            return self.sent[key][-1:]

        return again

    def _leave(self, uid: str) -> Callable[[], Awaitable[list[Event]]]:
        async def leave() -> list[Event]:
            return [leave_created_event(TENANT, employee_id=int(uid))]

        return leave


def _iso(today: date, days: int) -> str:
    return (today + timedelta(days=days)).isoformat()


def _short(story: Story, uid: str, hired: str) -> str:
    return "Lucie Fontaine" if uid == hired else story.dir.name(uid)


def _excluded_active(d: Directory, uid: str) -> bool:
    user = d.users[uid]
    still = user.contract_end is None or user.contract_end >= d.today
    return d.standing[uid].value == "excluded" and still and d.unique_name(uid)


def _former(d: Directory, uid: str) -> bool:
    return d.standing[uid].value == "left" and uid not in d.managed and d.unique_name(uid)


async def all_profiles(elevo: ElevoClient) -> list[ElevoProfile]:
    found: list[ElevoProfile] = []
    while True:
        page = await elevo.list_page(start_index=len(found) + 1, count=1000)
        found.extend(page.profiles)
        if not page.profiles or len(found) >= page.total:
            return found


async def play(stack: Stack, story: Story, changes: list[Change], out: Out, tally: Tally) -> None:
    out.header(f"4. Playing {len(changes)} changes in Lucca, each sent as a signed webhook")
    answers: list[dict[str, Any]] = []

    async def keep_answer(response: httpx.Response) -> None:
        await response.aread()
        answers.append(response.json() if response.status_code == 202 else {})

    hooks: dict[str, list[Callable[..., Any]]] = {"response": [keep_answer]}
    async with httpx.AsyncClient(timeout=30, event_hooks=hooks) as client:
        url = f"{stack.url('web')}/webhooks/lucca/{TENANT}"
        sender = WebhookSender(client, url, stack.webhook_secret, retry_delays=(1.0, 5.0))
        if not await sender.activate():
            raise DemoError("the webhook endpoint did not echo Lucca's activation")
        out.line(f"  endpoint {url} activated (GET ?echo=… echoed)")
        for number, change in enumerate(changes, 1):
            answers.clear()
            events, first_202 = await change.events(), 0.0
            for event in events:
                delivery = await sender.send(event)
                status = delivery.attempts[-1].status
                tally.statuses[str(status)] += 1
                first_202 = first_202 or (time.monotonic() if status == 202 else 0.0)
            seen = await observe(stack, story, change, first_202, tally)
            kinds = {a.get("status") for a in answers} - {"users", "department", None}
            runs = [a["run"] for a in answers if a.get("run")]
            action = await actions_of(stack, runs, out) if runs else "/".join(sorted(kinds))
            topic = str(events[0]["topic"]) + (f" +{len(events) - 1}" if len(events) > 1 else "")
            http = ",".join(
                sorted({str(a.attempts[-1].status) for a in sender.deliveries[-len(events) :]})
            )
            http += f"×{len(events)}" if len(events) > 1 else ""
            label = change.label if len(change.label) <= 48 else change.label[:47] + "…"
            out.line(f"  {number:>2}. {label:<48} {topic:<28} {http:<6} {action:<11} {seen}")
            tally.changes += 1


async def observe(stack: Stack, story: Story, change: Change, since: float, tally: Tally) -> str:
    """Wait until Elevo shows the change; the latency since the first 202, as text."""
    if change.expect is None:
        return "(no Elevo change expected)"
    try:
        await wait_until(change.expect, change.label, timeout=60, children=stack.children)
    except DemoError:
        tally.missed.append(f"{change.label}: not seen in Elevo within 60s")
        return "NOT SEEN in Elevo within 60s"
    took = time.monotonic() - since
    tally.latencies.append(took)
    return f"in Elevo after {took:.2f}s"


async def actions_of(stack: Stack, runs: list[str], out: Out) -> str:
    """What the runs a change's events started decided (the most telling action)."""
    counts: Counter[str] = Counter()
    for run_id in runs:
        try:
            counts.update((await wait_run(stack, run_id, out, timeout=30))["counts"])
        except DemoError:
            return "(running)"
    telling = [a for a in counts if a != "unchanged"] or list(counts)
    return "+".join(sorted(telling)) or "-"


# -- 5. the summary ---------------------------------------------------------------------------


async def consistency(lucca: LuccaControl, elevo: ElevoClient) -> tuple[Report, int]:
    dump = await lucca.dump()
    profiles = await all_profiles(elevo)
    report = check(
        dump["users"], profiles, skip_field=SKIP, custom_fields=CUSTOM,
        today=date.fromisoformat(dump["today"]),
    )  # fmt: skip
    return report, len(profiles)


async def summary(lucca: LuccaControl, elevo: ElevoClient, out: Out, tally: Tally) -> bool:
    out.header("5. Summary")
    say = lambda text: out.line(text, always=True)  # noqa: E731
    run = tally.full_run
    say(f"  full run      {run['processed']} users in {run['seconds']:.1f}s: "
        f"{counts_text(run['counts'])}")  # fmt: skip
    webhooks = ", ".join(f"{n}×{status}" for status, n in sorted(tally.statuses.items()))
    say(
        f"  changes       {tally.changes} played, {sum(tally.statuses.values())} webhooks ({webhooks})"
    )
    if tally.latencies:
        lat = tally.latencies
        say(f"  latency       webhook 202 → Elevo over {len(lat)} observable changes: median "
            f"{statistics.median(lat):.2f}s, p95 {percentile(lat, 95):.2f}s, max {max(lat):.2f}s")  # fmt: skip
    counters = await lucca.counters()
    full_total = tally.lucca_after_full.get("total", 0)
    limited = counters["by_status"].get("429", 0)
    say(f"  Lucca         {counters['total']} requests: {full_total} for the full run, "
        f"{counters['total'] - full_total} for the changes ({counters['by_id']} by id, "
        f"{counters['listings']} listings); {limited} answered 429")  # fmt: skip
    report, profiles = await consistency(lucca, elevo)
    deadline = time.monotonic() + 20
    while not report.ok and time.monotonic() < deadline:  # a last job may still be landing
        await asyncio.sleep(0.5)
        report, profiles = await consistency(lucca, elevo)
    say(f"  consistency   {report.checked} Lucca users against {profiles} Elevo profiles, "
        f"{len(report.conflicts)} userName conflicts reported")  # fmt: skip
    say(f"  mismatches: {len(report.mismatches)}")
    for problem in [*report.mismatches, *tally.missed]:
        say(f"    - {problem}")
    return report.ok and not tally.missed


# -- main -------------------------------------------------------------------------------------


async def demo(args: argparse.Namespace, children: Children, out: Out) -> int:
    redis = aioredis.Redis.from_url(args.redis_url)
    async with httpx.AsyncClient(timeout=30) as http:
        stack = Stack(http=http, children=children, redis=redis)
        try:
            await start_stack(args, stack, out)
            await register_tenant(stack, out)
            lucca = LuccaControl(http, stack.url("lucca"), TENANT)
            elevo = ElevoClient(http, stack.scim_url, Secret(stack.scim_token))
            tally = Tally()
            await full_sync(stack, lucca, out, tally)
            managed = {p.external_id for p in await all_profiles(elevo) if p.managed and p.active}
            directory = Directory(await lucca.dump(), SKIP, {m for m in managed if m})
            story = Story(lucca, elevo, directory)


            await play(stack, story, story.changes(random.Random(args.seed)), out, tally)
            ok = await summary(lucca, elevo, out, tally)
            if args.keep:
                await keep_running(stack, out)
            return 0 if ok else 1
        finally:
            await redis.aclose()


async def keep_running(stack: Stack, out: Out) -> None:
    out.line("\nServices keep running (--keep); Ctrl-C stops them:", always=True)
    for child in stack.children.started:
        out.line(f"  {child.name:<7} {child.url}", always=True)
    out.line(
        f"  tenant  {stack.url('web')}/sync/{TENANT}   ADMIN_TOKEN={stack.admin_token}", always=True
    )
    out.line(f"  Elevo   {stack.scim_url}/Users   token {stack.scim_token}", always=True)
    while True:
        stack.children.check_alive()
        await asyncio.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200, help="people in the generated company")
    parser.add_argument("--keep", action="store_true", help="leave the services running")
    parser.add_argument("--quiet", action="store_true", help="print the summary only")
    parser.add_argument("--seed", type=int, default=1, help="seed of the company and the story")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("DEMO_REDIS_URL", "redis://127.0.0.1:6379/5"),
        help="a database the demo may empty (scripts/demo passes it)",
    )
    args = parser.parse_args(argv)
    out = Out(quiet=args.quiet)
    children = Children(ROOT / ".demo" / "logs")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly on kill too
    if children.stop_leftovers():
        out.line("  (stopped the processes an earlier demo left running)")
    try:
        return asyncio.run(demo(args, children, out))
    except KeyboardInterrupt:
        out.line("\ninterrupted: stopping everything", always=True)
        return 130
    except DemoError as exc:
        out.line(f"\ndemo failed: {exc}", always=True)
        return 1
    finally:
        children.stop_all()


if __name__ == "__main__":
    sys.exit(main())

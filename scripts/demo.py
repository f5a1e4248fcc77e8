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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from demo_stack import DemoStack, PidFile, stop_all
from demo_story import SKIP, Change, Story
from demo_support import (
    TENANT,
    DemoError,
    Directory,
    Out,
    counts_text,
    managed_active,
    percentile,
)

from app.clients.elevo import ElevoClient
from app.secret import Secret
from simulators.lucca.webhooks import WebhookSender
from stack.checks import ScimAccess, all_profiles, consistency
from stack.lucca_control import LuccaControl
from stack.ports import StackError, wait_until
from stack.procfile import ROOT
from stack.services import Stack

CUSTOM = {"cost_center": "extendedData.e_cost_center", "entity": "legalEntity.name"}
TIMEZONE = "Europe/Paris"
# What a change's runs decided, most telling first ("superseded": a notice folded into another).
ACTIONS = ("create", "adopt", "reactivate", "update", "suspend", "release", "conflict", "error")


@dataclass
class Tally:
    full_run: dict[str, Any] = field(default_factory=dict)
    lucca_after_full: dict[str, Any] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    changes: int = 0


# -- 1-3: the stack, the tenant, the full sync ---------------------------------------------------


async def start(args: argparse.Namespace, stack: DemoStack, out: Out) -> None:
    out.header("1. Starting Lucca (simulator), Elevo (scim2-server), the web process, the worker")
    await stack.start(args.size, args.seed, out.line)
    await asyncio.sleep(0.3)  # one that lost its port to another program has exited by now
    stack.check_alive()


async def register_tenant(stack: DemoStack, out: Out) -> None:
    out.header(f"2. Registering the tenant: PUT /tenants/{TENANT}")
    creds = stack.creds
    lucca = {
        "subdomain": TENANT,
        "api_key": creds.lucca_api_key,
        "webhook_secret": creds.webhook_secret,
    }
    body = {
        "lucca": lucca,
        "elevo": {"scim_url": stack.scim_url, "token": creds.scim_token},
        "skip_field": SKIP,
        "custom_fields": CUSTOM,
        "timezone": TIMEZONE,
    }
    stored = await stack.api.put_tenant(TENANT, body)
    out.line("  the stored config, every secret redacted:")
    for key, value in stored.items():
        out.line(f"    {key}: {json.dumps(value, ensure_ascii=False)}")


async def full_sync(stack: DemoStack, lucca: LuccaControl, out: Out, tally: Tally) -> None:
    users = len((await lucca.dump())["users"])
    out.header(f'3. Full sync of {users} Lucca users: POST /sync/{TENANT} {{"mode": "full"}}')
    started = time.monotonic()
    run_id = await stack.api.start_run(TENANT, {"mode": "full"})
    out.line(f"  202, run {run_id}")
    run = await stack.run(run_id, within=600, progress=out.progress)
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


async def play(stack: DemoStack, changes: list[Change], out: Out, tally: Tally) -> None:
    out.header(f"4. Playing {len(changes)} changes in Lucca, each delivered as a signed webhook")
    answers: list[dict[str, Any]] = []

    async def keep_answer(response: httpx.Response) -> None:
        await response.aread()
        answers.append(response.json() if response.status_code == 202 else {})

    url = f"{stack.url('web')}/webhooks/lucca/{TENANT}"
    async with httpx.AsyncClient(timeout=30, event_hooks={"response": [keep_answer]}) as client:
        sender = WebhookSender(client, url, stack.creds.webhook_secret, retry_delays=(1.0, 5.0))
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
            stack.check_alive()
            out.progress(f"{head} {topic:<27} {code:<4} … waiting for Elevo")
            seen = await observe(stack, change, first_202 or time.monotonic(), tally)
            decided, note = await decisions(stack, change, answers)
            out.line(f"{head} {topic:<27} {code:<4} {decided:<10} {note or seen}")
            tally.changes += 1


async def observe(stack: DemoStack, change: Change, since: float, tally: Tally) -> str:
    """Wait until Elevo shows the change; the time since the first 202, as text."""
    if change.expect is None:
        return "no change expected in Elevo"
    try:
        await wait_until(
            change.expect, change.label, within=60, every=0.05, check=stack.check_alive
        )
    except StackError:
        tally.missed.append(f"{change.label}: not seen in Elevo within 60s")
        return "NOT SEEN in Elevo within 60s"
    took = time.monotonic() - since
    tally.latencies.append(took)
    return f"in Elevo after {took:.2f}s"


async def decisions(
    stack: DemoStack, change: Change, answers: list[dict[str, Any]]
) -> tuple[str, str]:
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
    stack: DemoStack, lucca: LuccaControl, elevo: ElevoClient, out: Out, tally: Tally
) -> bool:
    out.header("5. Summary")
    run, lat, sent = tally.full_run, tally.latencies, tally.statuses
    now, then = await lucca.counters(), tally.lucca_after_full
    by_id, listings = now["by_id"] - then["by_id"], now["listings"] - then["listings"]
    waits = await stack.metric("sync_lucca_budget_waits_total")
    scim = ScimAccess(stack.http, stack.scim_url, stack.creds.scim_token)
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
    found = await consistency(lucca, scim, skip_field=SKIP, custom_fields=CUSTOM)
    deadline = time.monotonic() + 20
    while not found.report.ok and time.monotonic() < deadline:  # a last write may be landing
        await asyncio.sleep(0.5)
        found = await consistency(lucca, scim, skip_field=SKIP, custom_fields=CUSTOM)
    report = found.report
    rows["consistency"] = (
        f"{report.checked} Lucca users against {len(found.profiles)} Elevo profiles "
        f"({len(report.conflicts)} userName conflict(s), left alone as the rules say)"
    )
    for name, text in rows.items():
        out.line(f"  {name:<12} {text}", always=True)
    out.line(f"  mismatches: {len(report.mismatches) + len(tally.missed)}", always=True)
    for problem in [*report.mismatches, *tally.missed]:
        out.line(f"    - {problem}", always=True)
    return report.ok and not tally.missed


# -- main -----------------------------------------------------------------------------------------


async def demo(args: argparse.Namespace, pieces: Stack, pid_file: PidFile, out: Out) -> int:
    async with httpx.AsyncClient(timeout=30) as http:
        stack = DemoStack(http, pieces, pid_file, args.redis_url)
        try:
            await start(args, stack, out)
            await register_tenant(stack, out)
            lucca = LuccaControl(http, stack.url("lucca"), TENANT)
            elevo = ElevoClient(http, stack.scim_url, Secret(stack.creds.scim_token))
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
    pieces = Stack(args.run_dir / "logs")
    pid_file = PidFile(args.run_dir / "pids.json")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill stops the children too
    try:
        if pid_file.stop_leftovers():
            out.line("(stopped the processes an earlier demo left running)", always=True)
        return asyncio.run(demo(args, pieces, pid_file, out))
    except KeyboardInterrupt:
        out.line("\ninterrupted: stopping everything the demo started", always=True)
        return 130
    except (DemoError, StackError) as exc:
        out.line(f"\ndemo failed: {exc}", always=True)
        return 1
    finally:
        stop_all(pieces, pid_file)


if __name__ == "__main__":
    sys.exit(main())

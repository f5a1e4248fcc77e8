"""Goal 2: webhook -> Elevo latency, simulators at zero latency.

Each change is a real HR edit in the Lucca simulator (a new first name, one user per change)
whose `employee.updated` webhook is signed and POSTed to the web process; one worker process
syncs it. Latency runs from the webhook POST's send time to the moment the new value is in
Elevo, measured three ways:

- `elevo`: the profile's `meta.lastModified` (set by the SCIM server when the PATCH lands;
  exact to the microsecond, every change) minus the send time;
- `run`: the service's run record `finished_at` (ms) minus the send time, every change;
- `poll`: a sample (every 25th change) polled on SCIM every 20 ms (cross-check);
- `histogram`: the worker's `sync_webhook_to_elevo_seconds` (receipt -> write), interpolated
  within its buckets (0.05, 0.1, 0.25, 0.5 s...): coarse.

Phases: (a) 50 changes/s with the Lucca budget lifted; (b) one change every 2 s under the
default budget (40/min); (c) 50 changes/s under the default budget (the floor is the budget).

    .venv/bin/python -m bench.webhook_latency                          # ~5 min, scim2-server
    .venv/bin/python -m bench.webhook_latency --scim fast              # simulators/fastscim.py
    .venv/bin/python -m bench.webhook_latency --size 600 --duration 10 --slow-duration 10

Goal: p99 < 250 ms in (a) and (b).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import httpx

from bench.common import (
    bench_stack,
    fresh_lucca_budget,
    full_sync,
    log,
    lucca_counters,
)
from bench.metrics import bucket_delta, histogram_quantile
from bench.results import markdown_table, summary_ms, write_results
from bench.scenario import LIFTED, Change, Service, shuffled

HISTOGRAM = "sync_webhook_to_elevo_seconds"


async def phase(
    service: Service,
    label: str,
    users: list[str],
    scim_ids: dict[str, str],
    rate: float,
    duration: float,
) -> dict[str, Any]:
    tenant = service.tenants["acme"]
    before = await service.metrics()
    await lucca_counters(service.http, tenant, reset=True)
    log(f"phase {label}: {rate} changes/s for {duration:.0f} s")
    changes = await service.paced(tenant, users, rate, duration, poll_every=25, scim_ids=scim_ids)
    await service.wait_visible(tenant, changes, scim_ids, within=180)
    finished = await service.run_times(tenant, changes)
    await asyncio.sleep(1.0)  # the last observation reaches the histogram
    after = await service.metrics()
    lucca = await lucca_counters(service.http, tenant)
    return summarise(label, rate, duration, changes, finished, before, after, lucca)


def summarise(
    label: str,
    rate: float,
    duration: float,
    changes: list[Change],
    finished: dict[str, float],
    before: Any,
    after: Any,
    lucca: dict[str, Any],
) -> dict[str, Any]:
    accepted = [c for c in changes if c.status == 202]
    elevo = [c.visible - c.sent for c in accepted if c.visible is not None]
    run = [finished[c.run] - c.sent for c in accepted if c.run in finished]
    poll = [c.polled - c.sent for c in accepted if c.polled is not None]
    buckets = bucket_delta(after.buckets(HISTOGRAM), before.buckets(HISTOGRAM))
    histogram = {
        "n": int(buckets[-1][1]) if buckets else 0,
        **{f"p{q}_ms": round(histogram_quantile(buckets, q / 100) * 1000, 1) for q in (50, 95, 99)},
        "buckets": buckets,
    }
    waits = after.total("sync_lucca_budget_waits_total") - before.total(
        "sync_lucca_budget_waits_total"
    )
    result = {
        "phase": label,
        "rate": rate,
        "duration_s": duration,
        "changes": len(changes),
        "accepted": len(accepted),
        "visible": len(elevo),
        "elevo": summary_ms(elevo),
        "run": summary_ms(run),
        "poll": summary_ms(poll),
        "histogram": histogram,
        "lucca_requests": lucca.get("total"),
        "lucca_by_id": lucca.get("by_id"),
        "budget_waits": waits,
        # Per change: user, send time, Elevo lastModified, run finished_at, first poll seen.
        "raw": [
            [c.user_id, c.sent, c.visible, finished.get(c.run or ""), c.polled, c.status]
            for c in changes
        ],
    }
    e = result["elevo"]
    log(
        f"  {len(elevo)}/{len(changes)} visible; elevo p50 {e['p50_ms']} p95 {e['p95_ms']}"
        f" p99 {e['p99_ms']} max {e['max_ms']} ms; lucca requests {lucca.get('total')}"
    )
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    phases: list[dict[str, Any]] = []
    with bench_stack("latency") as stack:
        async with httpx.AsyncClient(timeout=60) as http:
            service = await Service.start(stack, args.scim, http)
            service.start_worker(LUCCA_BUDGET_OVERRIDE=LIFTED)
            tenant = await service.add_tenant("acme", args.size)
            log("initial full reconciliation")
            initial = await full_sync(http, tenant)
            log(f"  {initial['state']} in {initial['wall_seconds']:.1f} s: {initial['counts']}")
            scim_ids = await service.active_managed(tenant)
            users = shuffled(scim_ids)
            log(f"{len(users)} active managed profiles")
            needed = int(args.rate * args.duration + 0.5 * args.slow_duration)
            needed += int(args.rate * max(0.0, args.budget_duration))
            if needed > len(users):
                raise SystemExit(f"{needed} changes need as many active users: raise --size")
            phases.append(
                await phase(service, "a: budget lifted", users, scim_ids, args.rate, args.duration)
            )
            service.start_worker(LUCCA_BUDGET_OVERRIDE="0")
            await fresh_lucca_budget(service.env["REDIS_URL"])  # the whole budget to start
            await asyncio.sleep(1.0)
            phases.append(
                await phase(service, "b: default budget", users, scim_ids, 0.5, args.slow_duration)
            )
            if args.budget_duration > 0:
                phases.append(
                    await phase(
                        service,
                        "c: default budget, 50/s",
                        users,
                        scim_ids,
                        args.rate,
                        args.budget_duration,
                    )
                )
    return {"initial_sync": initial, "phases": phases}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_latency", description=__doc__)
    parser.add_argument("--scim", choices=("scim2", "fast"), default="scim2")
    parser.add_argument("--size", type=int, default=5000, help="employees in the company")
    parser.add_argument("--rate", type=float, default=50.0, help="changes/s in (a) and (c)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of phase (a)")
    parser.add_argument("--slow-duration", type=float, default=60.0, help="seconds of (b)")
    parser.add_argument("--budget-duration", type=float, default=30.0, help="seconds of (c)")
    args = parser.parse_args()
    data = asyncio.run(run(args))
    rows = []
    for p in data["phases"]:
        for source in ("elevo", "run", "poll", "histogram"):
            s = p[source]
            rows.append(
                [
                    p["phase"],
                    source,
                    s["n"],
                    s["p50_ms"],
                    s["p95_ms"],
                    s["p99_ms"],
                    s.get("max_ms", "-"),
                    p["lucca_requests"],
                ]
            )
    print()
    print(
        markdown_table(
            ["phase", "measure", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "Lucca requests"],
            rows,
        )
    )
    print()
    for p in data["phases"][:2]:
        met = p["elevo"]["p99_ms"] < 250
        print(f"goal p99 < 250 ms, {p['phase']}: {p['elevo']['p99_ms']} ms -> met: {met}")
    write_results(f"webhook_latency-{args.scim}", {"args": vars(args), **data})


if __name__ == "__main__":
    main()

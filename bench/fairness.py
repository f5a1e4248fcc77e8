"""Goal 6: webhook latency of tenant B while tenant A reconciles 20,000 users.

One worker process serves both tenants (budget lifted). Tenant B (`--b-size` employees,
reconciled once beforehand) receives `--rate` changes per second, each a real Lucca edit
whose webhook is signed and POSTed; latency is send time -> the profile's
`meta.lastModified` in Elevo. Three phases, one run:

- baseline: B alone;
- during A's first run: A's 20,000 employees are created in Elevo;
- during A's second run: A's 20,000 employees are unchanged.

B's load starts 1 s after A's run starts and lasts `--duration` s or until A's run ends,
whichever comes first; A's wall time and the CPU of each worker process are reported too.

With `--runs-worker`, the Procfile's `worker-runs:` line runs beside the `worker:` line: the
steps of runs leave the `worker:` process to the live jobs.

    .venv/bin/python -m bench.fairness                     # fastscim, ~4 min
    .venv/bin/python -m bench.fairness --runs-worker       # with the worker-runs: line
    .venv/bin/python -m bench.fairness --a-size 5000 --b-size 500 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import httpx

from bench.common import bench_stack, full_sync, log
from bench.results import markdown_table, summary_ms, write_results
from bench.scenario import LIFTED, Change, Service, shuffled
from stack.meters import cpu_meter
from stack.processes import Child


async def b_load(
    service: Service,
    users: list[str],
    ids: dict[str, str],
    rate: float,
    duration: float,
    while_running: asyncio.Task[Any] | None = None,
) -> dict[str, Any]:
    """B's changes, one second at a time, for `duration` s or until `while_running` ends."""
    tenant = service.tenants["tenantb"]
    changes: list[Change] = []
    started = time.perf_counter()
    second = 0
    while time.perf_counter() - started < duration:
        if while_running is not None and while_running.done():
            break
        await asyncio.sleep(max(0.0, started + second - time.perf_counter()))
        changes += await service.paced(tenant, users, rate, 1.0)
        second += 1
    await service.wait_visible(tenant, changes, ids, within=300)
    latencies = [c.visible - c.sent for c in changes if c.visible is not None and c.status == 202]
    return {"changes": len(changes), **summary_ms(latencies)}


async def with_a(
    service: Service,
    users: list[str],
    ids: dict[str, str],
    args: argparse.Namespace,
    label: str,
) -> dict[str, Any]:
    a = service.tenants["tenanta"]
    started = time.perf_counter()
    with cpu_meter(workers(service)) as cpu:
        a_task = asyncio.create_task(full_sync(service.http, a, within=args.a_within, poll=0.5))
        await asyncio.sleep(1.0)
        result = await b_load(service, users, ids, args.rate, args.duration, a_task)
        a_still_running = not a_task.done()
        a_run = await a_task
    result |= {
        "cpu": {name: value for name, value in cpu.items() if name.endswith("_cpu_s")},
        "phase": label,
        "a_state": a_run["state"],
        "a_wall_s": round(a_run["wall_seconds"], 1),
        "a_counts": a_run.get("counts"),
        "a_running_throughout": a_still_running,
        "b_window_s": round(time.perf_counter() - started, 1),
    }
    return result


def workers(service: Service) -> dict[str, Child]:
    found = {"worker": service.worker, "worker_runs": service.runs_worker}
    return {name: child for name, child in found.items() if child is not None}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    phases: list[dict[str, Any]] = []
    with bench_stack("fairness") as stack:
        async with httpx.AsyncClient(timeout=120) as http:
            service = await Service.start(stack, args.scim, http)
            service.start_worker(LUCCA_BUDGET_OVERRIDE=LIFTED)
            if args.runs_worker:
                service.start_runs_worker()
            b = await service.add_tenant("tenantb", args.b_size, seed=2)
            await service.add_tenant("tenanta", args.a_size, seed=3)
            log("tenant B: initial full reconciliation")
            await full_sync(http, b)
            ids = await service.active_managed(b)
            users = shuffled(ids)
            log(f"baseline: B alone, {args.rate}/s for {args.duration:.0f} s")
            base = await b_load(service, users, ids, args.rate, args.duration)
            phases.append({"phase": "baseline: B alone", **base})
            log(f"  {base}")
            size = f"{args.a_size:,}"
            for label in (f"A first run ({size} creates)", f"A second run ({size} unchanged)"):
                log(f"B at {args.rate}/s during {label}")
                result = await with_a(service, users, ids, args, label)
                phases.append(result)
                log(f"  {result}")
                if result["a_state"] != "done":
                    log("A's run did not end: its full-run lock stays; no second run")
                    break
    return {"phases": phases}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fairness", description=__doc__)
    parser.add_argument("--scim", choices=("scim2", "fast"), default="fast")
    parser.add_argument("--a-size", type=int, default=20_000)
    parser.add_argument("--b-size", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=5.0, help="B changes per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of B load")
    parser.add_argument(
        "--runs-worker", action="store_true", help="also run the Procfile's worker-runs: line"
    )
    parser.add_argument("--a-within", type=float, default=600.0, help="max seconds of A's run")
    args = parser.parse_args()
    data = asyncio.run(run(args))
    rows = [
        [
            p["phase"], p["n"], p["p50_ms"], p["p95_ms"], p["p99_ms"], p["max_ms"],
            p.get("a_state", "-"), p.get("a_wall_s", "-"), p.get("a_running_throughout", "-"),
            " / ".join(f"{v:g}" for v in p.get("cpu", {}).values()) or "-",
        ]
        for p in data["phases"]
    ]  # fmt: skip
    print()
    print(
        markdown_table(
            ["phase", "B changes", "p50 ms", "p95 ms", "p99 ms", "max ms", "A state", "A run s",
             "A ran throughout", "worker CPU s (worker / worker-runs)"],
            rows,
        )
    )  # fmt: skip
    split = "-runs-worker" if args.runs_worker else ""
    write_results(f"fairness-{args.scim}{split}", {"args": vars(args), **data})


if __name__ == "__main__":
    main()

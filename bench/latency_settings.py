"""What the worker's poll delay and the Lucca batch window buy (issue 14, point 4).

Benchmark 2's phase (a) (50 changes/s, budget lifted, fastscim by default), once per
combination of `WORKER_POLL_DELAY_SECONDS` and `LUCCA_BATCH_WINDOW_SECONDS`, the worker
restarted with each; combinations alternate (forwards, then backwards) over `--repeat` rounds.
Each phase reports the webhook -> Elevo latency (the profile's `meta.lastModified`), the Lucca
requests it cost, the CPU of the worker, Redis and the web process, and the worker's and
Redis's CPU over `--idle` s with nothing to do (the price of polling).

    .venv/bin/python -m bench.latency_settings --settings 0.05/0.01,0.01/0.01,0.01/0.002
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from typing import Any

import httpx

from bench.common import bench_stack, full_sync, log, lucca_counters
from bench.results import markdown_table, summary_ms, write_results
from bench.scenario import LIFTED, Service, shuffled
from stack.meters import cpu_meter


def combinations(text: str) -> list[tuple[str, str]]:
    """`poll/window,poll/window` -> [(poll, window), ...], as the environment spells them."""
    pairs = [item.split("/") for item in text.split(",") if item]
    return [(poll.strip(), window.strip()) for poll, window in pairs]


async def one(
    service: Service,
    users: list[str],
    scim_ids: dict[str, str],
    setting: tuple[str, str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    poll, window = setting
    service.start_worker(
        LUCCA_BUDGET_OVERRIDE=LIFTED,
        WORKER_POLL_DELAY_SECONDS=poll,
        LUCCA_BATCH_WINDOW_SECONDS=window,
    )
    assert service.worker is not None
    children = {"worker": service.worker, "redis": service.redis, "web": service.web}
    await asyncio.sleep(1.0)  # the worker's start-up is not idle time
    with cpu_meter(children) as idle:
        await asyncio.sleep(args.idle)
    tenant = service.tenants["acme"]
    await lucca_counters(service.http, tenant, reset=True)
    with cpu_meter(children) as busy:
        changes = await service.paced(tenant, users, args.rate, args.duration)
        await service.wait_visible(tenant, changes, scim_ids, within=120)
    lucca = await lucca_counters(service.http, tenant)
    accepted = [c for c in changes if c.status == 202]
    latencies = [c.visible - c.sent for c in accepted if c.visible is not None]
    result = {
        "poll_delay": poll,
        "batch_window": window,
        "changes": len(changes),
        "visible": len(latencies),
        **summary_ms(latencies),
        "lucca_requests": lucca.get("total"),
        "busy_cpu": {k: v for k, v in busy.items() if k.endswith("_cpu_s")},
        "idle_cpu_per_s": {
            k: round(v / args.idle, 4) for k, v in idle.items() if k.endswith("_cpu_s")
        },
    }
    log(f"  {setting}: {result}")
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = combinations(args.settings)
    phases: list[dict[str, Any]] = []
    with bench_stack("latency_settings") as stack:
        # Idle connections dropped before uvicorn's 5 s keep-alive ends: between phases the
        # pool would otherwise reuse one the web process is closing.
        limits = httpx.Limits(keepalive_expiry=2.0)
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            service = await Service.start(stack, args.scim, http)
            service.start_worker(LUCCA_BUDGET_OVERRIDE=LIFTED)
            tenant = await service.add_tenant("acme", args.size)
            initial = await full_sync(http, tenant)
            log(f"initial full reconciliation: {initial['state']}")
            scim_ids = await service.active_managed(tenant)
            users = shuffled(scim_ids)
            needed = int(args.rate * args.duration) * len(settings) * args.repeat
            if needed > len(users):
                raise SystemExit(f"{needed} changes need as many active users: raise --size")
            for round_ in range(args.repeat):
                for setting in settings if round_ % 2 == 0 else settings[::-1]:
                    phases.append(await one(service, users, scim_ids, setting, args))
    return {"phases": phases}


def medians(phases: list[dict[str, Any]]) -> list[list[Any]]:
    """One row per combination: the median of its repetitions."""
    rows = []
    seen = dict.fromkeys((p["poll_delay"], p["batch_window"]) for p in phases)
    for poll, window in seen:
        mine = [p for p in phases if (p["poll_delay"], p["batch_window"]) == (poll, window)]

        def median(get: Any, of: list[dict[str, Any]] = mine) -> float:
            return round(float(statistics.median(get(p) for p in of)), 3)

        rows.append(
            [
                poll, window, len(mine), sum(p["n"] for p in mine),
                median(lambda p: p["p50_ms"]), median(lambda p: p["p95_ms"]),
                median(lambda p: p["p99_ms"]), median(lambda p: p["lucca_requests"]),
                median(lambda p: p["busy_cpu"]["worker_cpu_s"]),
                median(lambda p: p["busy_cpu"]["redis_cpu_s"]),
                median(lambda p: p["idle_cpu_per_s"]["worker_cpu_s"]),
                median(lambda p: p["idle_cpu_per_s"]["redis_cpu_s"]),
            ]
        )  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.latency_settings", description=__doc__)
    parser.add_argument("--scim", choices=("scim2", "fast"), default="fast")
    parser.add_argument("--size", type=int, default=5000, help="employees in the company")
    parser.add_argument(
        "--settings",
        default="0.05/0.01,0.01/0.01,0.01/0.002",
        help="poll delay/batch window pairs, comma-separated",
    )
    parser.add_argument("--rate", type=float, default=50.0, help="changes/s")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of each phase")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU measure")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    data = asyncio.run(run(args))
    rows = [
        [
            p["poll_delay"], p["batch_window"], p["n"], p["p50_ms"], p["p95_ms"], p["p99_ms"],
            p["lucca_requests"], p["busy_cpu"]["worker_cpu_s"], p["busy_cpu"]["redis_cpu_s"],
            p["idle_cpu_per_s"]["worker_cpu_s"], p["idle_cpu_per_s"]["redis_cpu_s"],
        ]
        for p in data["phases"]
    ]  # fmt: skip
    head = ["poll delay s", "batch window s", "changes", "p50 ms", "p95 ms", "p99 ms",
            "Lucca requests", "worker CPU s", "redis CPU s", "idle worker CPU s/s",
            "idle redis CPU s/s"]  # fmt: skip
    print("\nEvery phase, in the order run:\n")
    print(markdown_table(head, rows))
    print("\nMedians per combination:\n")
    print(markdown_table([*head[:2], "phases", *head[2:]], medians(data["phases"])))
    write_results("latency_settings", {"args": vars(args), **data})


if __name__ == "__main__":
    main()

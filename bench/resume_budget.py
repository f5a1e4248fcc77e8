"""Issue 11, point 3: work of several Lucca requests resumes under the real budget.

One tenant at its own budget (40 requests/min, a burst of 10), one worker, fastscim:

1. a full run over `--size` managed employees of whom `--vanished` left Lucca (deleted from
   the simulator after a first run at a lifted budget); a live webhook `--webhook-after` s
   into the run. Wall time against the floor of its Lucca requests, and the webhook's lag.
2. a department rename (the largest department): its member listing, then its members.
3. a dry run over `--plan` users.

For each: the Lucca requests from the simulator's own request log, and how many pages (by
offset and filter) or users (by id) were asked more than once: the goal is none.

    .venv/bin/python -m bench.resume_budget                       # ~5 min
    .venv/bin/python -m bench.resume_budget --size 2000 --vanished 700
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from typing import Any

import httpx

from bench.common import (
    ADMIN_TOKEN,
    Tenant,
    bench_stack,
    full_sync,
    log,
    mutate,
    post_event,
)
from bench.results import markdown_table, write_results
from bench.scenario import LIFTED, Change, Service
from stack.service_api import ServiceApi

BUDGET = 40
BURST = 10  # bucket_capacity(40)


async def request_log(http: httpx.AsyncClient, tenant: Tenant, reset: bool = False) -> Any:
    """The simulator's counters with its request log (reset: and start counting again)."""
    control = tenant.lucca(http)
    response = await http.request("DELETE" if reset else "GET", f"{control.base}/counters")
    response.raise_for_status()
    return response.json()


def repeats(entries: list[dict[str, Any]]) -> dict[str, int]:
    """Requests asked again: listing pages (by filter and offset) and users (by id)."""
    pages: Counter[str] = Counter()
    users: Counter[str] = Counter()
    for entry in entries:
        params = entry["params"]
        if "id" in params:
            users.update(params["id"].split(","))
        elif "paging" in params:
            where = ",".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "fields")
            pages[where] += 1
    return {
        "listing_pages": len(pages),
        "pages_read_again": sum(n - 1 for n in pages.values()),
        "users_by_id": len(users),
        "users_read_again": sum(n - 1 for n in users.values()),
    }


def floor_seconds(requests: int) -> float:
    return max(0, requests - BURST) * 60.0 / BUDGET


async def measured(
    http: httpx.AsyncClient, tenant: Tenant, started: float, run: dict[str, Any]
) -> dict[str, Any]:
    counters = await request_log(http, tenant)
    served = [e for e in counters["requests"] if e["status"] == 200]
    return {
        "state": run.get("state"),
        "wall_s": round(time.perf_counter() - started, 1),
        "lucca_requests": counters["total"],
        "floor_s": round(floor_seconds(counters["total"]), 1),
        "counts": run.get("counts"),
        **repeats(served),
    }


async def full_run_phase(
    service: Service, tenant: Tenant, vanished: int, webhook_after: float
) -> dict[str, Any]:
    http = service.http
    ids = sorted(await service.active_managed(tenant), key=int)
    gone = ids[-vanished:] if vanished else []
    log(f"deleting {len(gone):,} of {len(ids):,} employees from Lucca")
    gate = asyncio.Semaphore(4)

    async def delete(user_id: str) -> None:
        async with gate:
            for attempt in range(3):  # the simulator may reset a connection under load
                try:
                    await mutate(http, tenant, op="delete", user_id=int(user_id))
                    return
                except httpx.TransportError:
                    await asyncio.sleep(0.5 * (attempt + 1))

    await asyncio.gather(*(delete(user_id) for user_id in gone))
    service.start_worker(LUCCA_BUDGET_OVERRIDE="0")  # the tenant's own 40/min from now on
    await asyncio.sleep(65)  # a budget window with no request in it
    await request_log(http, tenant, reset=True)
    scim_ids = await service.active_managed(tenant)
    live = Change(ids[0], f"Live{int(time.time())}")
    started = time.perf_counter()
    run_task = asyncio.create_task(full_sync(http, tenant, within=1800, poll=0.5))
    await asyncio.sleep(webhook_after)
    await service.change(tenant, live)
    await service.wait_visible(tenant, [live], scim_ids, within=600)
    run = await run_task
    result = await measured(http, tenant, started, run)
    lag = None if live.visible is None else round(live.visible - live.sent, 1)
    return result | {"phase": "full run", "vanished": len(gone), "live_webhook_lag_s": lag}


async def department_phase(service: Service, tenant: Tenant) -> dict[str, Any]:
    http = service.http
    dump = await tenant.lucca(http).dump()
    sizes = Counter((u.get("department") or {}).get("id") for u in dump["users"])
    department, members = max(
        ((d, n) for d, n in sizes.items() if d is not None), key=lambda x: x[1]
    )
    await request_log(http, tenant, reset=True)
    started = time.perf_counter()
    events = await mutate(http, tenant, op="rename_department", dept_id=department, name="Renamed")
    runs = [(await post_event(http, tenant, event))[2] for event in events]
    api = ServiceApi(http, tenant.web_url, ADMIN_TOKEN)
    run = {}
    for run_id in [r for r in runs if r]:
        run = await api.wait_run(tenant.name, run_id, within=900, strict=False, poll=0.5)
    result = await measured(http, tenant, started, run)
    return result | {"phase": f"department of {members:,}"}


async def plan_phase(service: Service, tenant: Tenant, count: int) -> dict[str, Any]:
    http = service.http
    users = sorted(await service.active_managed(tenant), key=int)[:count]
    await request_log(http, tenant, reset=True)
    api = ServiceApi(http, tenant.web_url, ADMIN_TOKEN)
    started = time.perf_counter()
    run_id = await api.start_run(tenant.name, {"users": users, "dry_run": True})
    run = await api.wait_run(tenant.name, run_id, within=900, strict=False, poll=0.5)
    result = await measured(http, tenant, started, run)
    return result | {"phase": f"dry run of {len(users)} users"}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with bench_stack("resume_budget") as stack:
        async with httpx.AsyncClient(timeout=120) as http:
            service = await Service.start(stack, args.scim, http)
            service.start_worker(LUCCA_BUDGET_OVERRIDE=LIFTED)
            tenant = await service.add_tenant("resume", args.size)
            log(f"first run over {args.size:,} employees, budget lifted")
            first = await full_sync(http, tenant, within=1800, poll=0.5)
            log(f"  {first['state']} in {first['wall_seconds']:.1f} s")
            phases = [await full_run_phase(service, tenant, args.vanished, args.webhook_after)]
            log(f"  {phases[-1]}")
            phases.append(await department_phase(service, tenant))
            log(f"  {phases[-1]}")
            phases.append(await plan_phase(service, tenant, args.plan))
            log(f"  {phases[-1]}")
    return {"phases": phases}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.resume_budget", description=__doc__)
    parser.add_argument("--scim", choices=("scim2", "fast"), default="fast")
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--vanished", type=int, default=7_000)
    parser.add_argument("--plan", type=int, default=250)
    parser.add_argument("--webhook-after", type=float, default=10.0)
    args = parser.parse_args()
    data = asyncio.run(run(args))
    headers = [
        "phase", "state", "wall s", "Lucca req", "floor s (40/min)", "pages", "pages again",
        "users by id", "users again", "live webhook lag s",
    ]  # fmt: skip
    rows = [
        [
            p["phase"], p["state"], p["wall_s"], p["lucca_requests"], p["floor_s"],
            p["listing_pages"], p["pages_read_again"], p["users_by_id"], p["users_read_again"],
            p.get("live_webhook_lag_s", "-"),
        ]
        for p in data["phases"]
    ]  # fmt: skip
    print()
    print(markdown_table(headers, rows))
    write_results(f"resume_budget-{args.scim}", {"args": vars(args), **data})


if __name__ == "__main__":
    main()

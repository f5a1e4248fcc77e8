"""Goal 5: 1,000 employees changed at once, under the default Lucca budget (40/min).

A company of `--size` employees is reconciled once; the tenant's budget bucket is then full
(10 tokens, its burst) and the simulator's request counters are reset. `--changes` users get
a new first name in Lucca at once, and their `employee.updated` webhooks are delivered with
`--concurrency` in flight. Measured: the Lucca requests used, the time from the first webhook
to the last change landing in Elevo (its `meta.lastModified`), and a full consistency check
(simulators/consistency.py) of Lucca against Elevo at the end.

    .venv/bin/python -m bench.burst_budget                    # ~2 min
    .venv/bin/python -m bench.burst_budget --scim scim2

Goal: <= 25 Lucca requests and consistent in < 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import httpx

from bench.common import (
    bench_stack,
    fresh_lucca_budget,
    full_sync,
    log,
    lucca_counters,
    post_event,
)
from bench.results import markdown_table, write_results
from bench.scenario import Change, Service, shuffled
from simulators.consistency import check
from stack.meters import cpu_seconds


async def consistency(service: Service, name: str) -> dict[str, Any]:
    tenant = service.tenants[name]
    dump = (await service.http.get(f"{tenant.lucca_url}/_control/{tenant.subdomain}/users")).json()
    from datetime import date

    report = check(
        dump["users"],
        await service.profiles(tenant),
        skip_field="e_skip_elevo_sync",
        custom_fields={},
        today=date.fromisoformat(dump["today"]),
    )
    return {
        "checked": report.checked,
        "mismatches": len(report.mismatches),
        "conflicts": len(report.conflicts),
        "examples": report.mismatches[:5],
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with bench_stack("burst") as stack:
        async with httpx.AsyncClient(timeout=120) as http:
            service = await Service.start(stack, args.scim, http)
            worker = service.start_worker(LUCCA_BUDGET_OVERRIDE="0")
            tenant = await service.add_tenant("acme", args.size)
            log("initial full reconciliation (default budget)")
            initial = await full_sync(http, tenant)
            log(f"  {initial['state']} in {initial['wall_seconds']:.1f} s")
            ids = await service.active_managed(tenant)
            users = shuffled(ids)[: args.changes]
            if len(users) < args.changes:
                raise SystemExit(f"only {len(users)} active users: raise --size")
            before = await consistency(service, "acme")
            log(f"consistency before: {before}")
            await asyncio.sleep(2.0)  # let the worker's leftovers settle
            await fresh_lucca_budget(service.env["REDIS_URL"])  # the whole window: 40
            await lucca_counters(http, tenant, reset=True)
            metrics_before = await service.metrics()

            stamp = int(time.time())
            changes = [Change(uid, f"Burst{stamp}x{i}") for i, uid in enumerate(users)]
            events: list[tuple[Change, dict[str, Any]]] = []
            for change in changes:  # HR edits 1,000 people at once...
                response = await http.post(
                    f"{tenant.lucca_url}/_control/{tenant.subdomain}/mutations",
                    json={
                        "op": "update",
                        "user_id": int(change.user_id),
                        "firstName": change.value,
                    },
                )
                response.raise_for_status()
                events += [(change, e) for e in response.json()["events"]]
            log(f"{len(changes)} users changed in Lucca; delivering {len(events)} webhooks")
            gate = asyncio.Semaphore(args.concurrency)

            async def deliver(change: Change, event: dict[str, Any]) -> None:
                async with gate:
                    change.sent, change.status, change.run = await post_event(http, tenant, event)

            first_sent = time.time()
            await asyncio.gather(*(deliver(c, e) for c, e in events))
            delivered = time.time() - first_sent
            log(f"  delivered in {delivered:.1f} s; waiting for Elevo")
            await service.wait_visible(tenant, changes, ids, within=args.within)
            visible = [c.visible for c in changes if c.visible is not None]
            consistent_after = max(visible) - first_sent if len(visible) == len(changes) else None
            lucca = await lucca_counters(http, tenant)
            metrics_after = await service.metrics()
            after = await consistency(service, "acme")
            log(f"consistency after: {after}")
            cpu = {"worker_cpu_s": cpu_seconds(worker)}
    waits = metrics_after.total("sync_lucca_budget_waits_total") - metrics_before.total(
        "sync_lucca_budget_waits_total"
    )
    return {
        "initial_sync": initial,
        "changes": len(changes),
        "webhooks": len(events),
        "accepted": sum(c.status == 202 for c in changes),
        "delivery_s": round(delivered, 2),
        "visible": len(visible),
        "consistent_after_s": None if consistent_after is None else round(consistent_after, 2),
        "lucca_requests": lucca.get("total"),
        "lucca_by_id": lucca.get("by_id"),
        "lucca_by_status": lucca.get("by_status"),
        "budget_waits": waits,
        "consistency_before": before,
        "consistency_after": after,
        **cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.burst_budget", description=__doc__)
    parser.add_argument("--scim", choices=("scim2", "fast"), default="fast")
    parser.add_argument("--size", type=int, default=1200)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20, help="webhooks in flight")
    parser.add_argument("--within", type=float, default=300.0)
    args = parser.parse_args()
    data = asyncio.run(run(args))
    print()
    print(
        markdown_table(
            ["changed", "webhooks 202", "delivered in s", "Lucca requests", "consistent after s",
             "mismatches after", "goal <= 25 req", "goal < 60 s"],
            [[
                data["changes"], data["accepted"], data["delivery_s"], data["lucca_requests"],
                data["consistent_after_s"], data["consistency_after"]["mismatches"],
                (data["lucca_requests"] or 0) <= 25,
                data["consistent_after_s"] is not None and data["consistent_after_s"] < 60,
            ]],
        )
    )  # fmt: skip
    write_results(f"burst_budget-{args.scim}", {"args": vars(args), **data})


if __name__ == "__main__":
    main()

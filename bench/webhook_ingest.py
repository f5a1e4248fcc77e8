"""Goal 1: webhook ingestion of one web process, side by side with a minimal anchor.

The service's web line (uvicorn, one process, as in the Procfile) and `bench/anchor_app.py`
(HMAC check + one ARQ enqueue_job) run against one fresh redis-server; the load comes from
`bench/loadgen.py` in a separate process over loopback. Every event has its own id and one of
100,000 users. No worker runs: this measures ingestion only. Phases alternate between the two
targets (the order flips each repetition) and Redis is emptied between phases.

    .venv/bin/python -m bench.webhook_ingest                    # ~4 min
    .venv/bin/python -m bench.webhook_ingest --duration 5 --repeat 1   # quick check
    .venv/bin/python -m bench.webhook_ingest --profile          # + py-spy of the web process

Goal: closed-loop throughput >= 0.7 x the anchor's; p99 at 1,000 req/s <= 1.5 x the anchor's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench.common import WEBHOOK_SECRET, add_tenant, bench_env, bench_stack, log, redis_client
from bench.metrics import command_delta, redis_commands
from bench.profiles import finish_profile, start_profile
from bench.results import markdown_table, write_results
from stack.meters import cpu_meter
from stack.ports import free_port
from stack.processes import Child
from stack.procfile import child_env, procfile_command

TENANT = "acme"


async def _empty_queue(redis_url: str) -> None:
    """Drop what a phase left (jobs, dedupe marks, runs), keep the tenant config."""
    client = redis_client(redis_url)
    try:
        for pattern in ("arq:*", "t:*"):
            batch: list[bytes] = []
            async for key in client.scan_iter(match=pattern, count=5000):
                batch.append(key)
                if len(batch) >= 5000:
                    await client.unlink(*batch)
                    batch.clear()
            if batch:
                await client.unlink(*batch)
    finally:
        await client.aclose()


def _load(url: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    connections = args.connections if mode == "closed" else args.open_connections
    argv = [
        sys.executable,
        "-m",
        "bench.loadgen",
        "--url",
        url,
        "--secret",
        WEBHOOK_SECRET,
        "--mode",
        mode,
        "--connections",
        str(connections),
        "--rate",
        str(args.rate),
        "--duration",
        str(args.duration),
        "--warmup",
        str(args.warmup),
        "--out",
        str(out),
    ]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=args.duration * 4 + 120)
    result: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    phases: list[dict[str, Any]] = []
    profile: dict[str, Any] | None = None
    with bench_stack("ingest") as stack:
        redis = stack.redis()
        lucca = stack.lucca()
        env = bench_env(redis, lucca)
        web = stack.web(env)
        anchor_port = free_port()
        anchor_redis = f"redis://127.0.0.1:{redis.port}/1"
        # The anchor app served exactly as the Procfile serves the service's web app.
        anchor_argv = [
            "bench.anchor_app:create_app" if word == "app.main:create_app" else word
            for word in procfile_command("web", {"PORT": str(anchor_port)})
        ]
        anchor_env = child_env(REDIS_URL=anchor_redis, ANCHOR_SECRET=WEBHOOK_SECRET)
        anchor = stack.sup.start("anchor", anchor_argv, anchor_env, port=anchor_port)
        web_url = f"http://127.0.0.1:{env['PORT']}"
        async with httpx.AsyncClient(timeout=60) as http:
            await add_tenant(
                http,
                name=TENANT,
                web_url=web_url,
                lucca_url=lucca.url,
                scim_base="http://127.0.0.1:9",
                size=10,
            )
        targets: dict[str, tuple[Child, str, str]] = {
            "service": (web, f"{web_url}/webhooks/lucca/{TENANT}", env["REDIS_URL"]),
            "anchor": (
                anchor,
                f"http://127.0.0.1:{anchor_port}/webhooks/lucca/{TENANT}",
                anchor_redis,
            ),
        }
        for rep in range(args.repeat):
            order = ["service", "anchor"] if rep % 2 == 0 else ["anchor", "service"]
            for mode in ("closed", "open"):
                for name in order:
                    proc, url, redis_url = targets[name]
                    await _empty_queue(redis_url)
                    await asyncio.sleep(1.0)
                    log(f"rep {rep + 1}: {name} {mode}")
                    before = await redis_commands(redis_url)
                    with cpu_meter({"server": proc, "redis": redis}) as cpu:
                        result = await asyncio.to_thread(_load, url, mode, args)
                    commands = command_delta(await redis_commands(redis_url), before)
                    sent = max(1, result["sent_total"])
                    result |= {"target": name, "rep": rep + 1} | cpu
                    result["redis_commands"] = commands
                    result["redis_commands_per_request"] = round(
                        sum(n for c, n in commands.items() if c not in {"info", "scan", "unlink"})
                        / sent,
                        1,
                    )
                    phases.append(result)
                    log(
                        f"  {result['rps']:.0f} req/s, p50 {result['p50_ms']} ms,"
                        f" p99 {result['p99_ms']} ms, statuses {result['statuses']}"
                        f" errors {result['errors']}"
                    )
        if args.profile:
            await _empty_queue(env["REDIS_URL"])
            log("profiling the web process under closed-loop load")
            spy = start_profile(stack, web, args.duration, "ingest-web")
            await asyncio.to_thread(_load, targets["service"][1], "closed", args)
            profile = finish_profile(spy)
    return {"phases": phases, "profile": profile}


def summarise(phases: list[dict[str, Any]]) -> dict[str, Any]:
    def med(target: str, mode: str, key: str) -> float:
        values = [p[key] for p in phases if p["target"] == target and p["mode"] == mode]
        return float(statistics.median(values)) if values else float("nan")

    throughput_ratio = med("service", "closed", "ok_rps") / med("anchor", "closed", "ok_rps")
    p99_ratio = med("service", "open", "p99_ms") / med("anchor", "open", "p99_ms")
    return {
        "service_rps": med("service", "closed", "ok_rps"),
        "anchor_rps": med("anchor", "closed", "ok_rps"),
        "throughput_ratio": round(throughput_ratio, 3),
        "service_p99_at_rate_ms": med("service", "open", "p99_ms"),
        "anchor_p99_at_rate_ms": med("anchor", "open", "p99_ms"),
        "p99_ratio_at_rate": round(p99_ratio, 3),
        "goal_throughput_met": throughput_ratio >= 0.7,
        "goal_p99_met": p99_ratio <= 1.5,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_ingest", description=__doc__)
    parser.add_argument("--duration", type=float, default=15.0, help="measured s per phase")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32, help="closed-loop connections")
    parser.add_argument("--open-connections", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1000.0, help="fixed-rate phase req/s")
    parser.add_argument("--profile", action="store_true", help="py-spy the web process")
    args = parser.parse_args()
    data = asyncio.run(run(args))
    summary = summarise(data["phases"])
    rows = [
        [
            p["rep"],
            p["target"],
            p["mode"] + (f" {p['rate']:.0f}/s" if p["rate"] else ""),
            p["ok_rps"],
            p["p50_ms"],
            p["p99_ms"],
            p["p999_ms"],
            sum(v for k, v in p["statuses"].items() if not k.startswith("2"))
            + sum(p["errors"].values()),
            p["server_cpu_s"],
            p["redis_cpu_s"],
            p["loadgen_cpu_s"],
            p["redis_commands_per_request"],
        ]
        for p in data["phases"]
    ]
    print()
    print(
        markdown_table(
            [
                "rep",
                "target",
                "load",
                "2xx req/s",
                "p50 ms",
                "p99 ms",
                "p99.9 ms",
                "non-2xx+errors",
                "server CPU s",
                "redis CPU s",
                "loadgen CPU s",
                "redis cmds/req",
            ],
            rows,
        )
    )
    print()
    print(
        markdown_table(
            ["measure", "service", "anchor", "ratio", "goal", "met"],
            [
                [
                    "closed-loop req/s (median)",
                    summary["service_rps"],
                    summary["anchor_rps"],
                    summary["throughput_ratio"],
                    ">= 0.7",
                    summary["goal_throughput_met"],
                ],
                [
                    f"p99 ms at {args.rate:.0f} req/s (median)",
                    summary["service_p99_at_rate_ms"],
                    summary["anchor_p99_at_rate_ms"],
                    summary["p99_ratio_at_rate"],
                    "<= 1.5",
                    summary["goal_p99_met"],
                ],
            ],
        )
    )
    if data["profile"]:
        print("\nprofile of the web process (inclusive % of samples):")
        for name, pct in data["profile"]["project_inclusive_pct"][:25]:
            print(f"  {pct:5.1f}%  {name}")
    write_results("webhook_ingest", {"args": vars(args), "summary": summary, **data})


if __name__ == "__main__":
    main()

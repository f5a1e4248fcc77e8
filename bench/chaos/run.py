"""The whole suite, in order, and its command line (`python -m bench.chaos`)."""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import httpx
from redis.exceptions import RedisError

import bench.chaos
from bench.chaos.faults import clear_faults, inject_faults
from bench.chaos.options import RETRY_DELAYS, TENANT, ChaosError, ChaosOptions, Summary, counts_text
from bench.chaos.pieces import ChaosStack, register_tenant, settle, start_stack
from bench.chaos.player import Player
from bench.chaos.verdict import dry_run_plan, reconcile, save_diagnostics, scan_worker_logs, verdict
from simulators.lucca.webhooks import WebhookSender
from stack.ports import StackError
from stack.services import Stack


async def _initial_sync(chaos: ChaosStack) -> None:
    started = time.monotonic()
    run = await chaos.wait_run({"mode": "full"}, 600)
    if run.get("state") != "done":
        raise ChaosError(f"the initial full sync ended {run.get('state')}: {run}")
    quiet, _ = await settle(chaos, 300)
    if not quiet:
        raise ChaosError("the queue did not empty after the initial full sync")
    counts = counts_text(Counter(run.get("counts", {})))
    chaos.log(f"initial full sync: {counts} in {time.monotonic() - started:.0f}s")


async def _play_under_faults(chaos: ChaosStack, options: ChaosOptions, summary: Summary) -> None:
    await inject_faults(chaos, options)
    webhook = f"{chaos.url('web')}/webhooks/lucca/{TENANT}"
    secret = chaos.creds.webhook_secret
    sender = WebhookSender(chaos.http, webhook, secret, retry_delays=RETRY_DELAYS)
    player = Player(chaos, options, summary, random.Random(options.seed), sender)
    chaos.log(f"playing {options.changes} changes at {options.pace:.0f}/s under faults")
    await player.play()
    await clear_faults(chaos, summary)


async def _chaos(options: ChaosOptions, chaos: ChaosStack, summary: Summary) -> None:
    await start_stack(chaos, options)
    await register_tenant(chaos)
    await _initial_sync(chaos)
    await _play_under_faults(chaos, options, summary)
    chaos.log("faults cleared; waiting for quiescence")
    quiet, summary.quiescence_seconds = await settle(chaos, options.settle_timeout)
    if not quiet:
        summary.failures.append(f"not quiescent after {options.settle_timeout:.0f}s")
    before = await verdict(chaos)
    summary.pre_check = {
        "mismatches": len(before.mismatches),
        "wrongly_suspended": len(before.wrongly_suspended),
    }
    summary.pre_mismatches = before.mismatches
    chaos.log(f"before the reconciliation: {summary.pre_check}")
    plan = await dry_run_plan(chaos, summary)
    await save_diagnostics(chaos, plan, before)
    await reconcile(chaos, summary)
    quiet, _ = await settle(chaos, 300)
    if not quiet:
        summary.failures.append("not quiescent after the reconciliation")
    after = await verdict(chaos)
    summary.checked = after.checked
    summary.mismatches = after.mismatches
    summary.conflicts = after.conflicts
    summary.wrongly_suspended = after.wrongly_suspended


async def _stop(chaos: ChaosStack, summary: Summary) -> None:
    """Every process stopped; what the supervisor saw of them goes to the summary."""
    if chaos.redis is not None:
        await chaos.redis.aclose()
    await chaos.stack.aclose()
    for name, child in chaos.sup.children.items():
        if child.restart:
            summary.restarts[name] = child.restarts
        if child.exits:
            summary.exit_codes[name] = child.exits
    summary.jobs = scan_worker_logs(chaos.sup.log_dir)


async def run(options: ChaosOptions) -> Summary:
    """Run the suite; the summary (also printed unless `options.quiet`)."""
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
    summary = Summary(options)
    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as http:
        chaos = ChaosStack(http, workdir, Stack(workdir / "logs"))
        try:
            await _chaos(options, chaos, summary)
        except (ChaosError, StackError, httpx.HTTPError, RedisError, OSError) as exc:
            summary.failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            await _stop(chaos, summary)
    summary.wall_seconds = time.monotonic() - started
    if options.keep_logs or not summary.ok:
        summary.log_dir = str(workdir / "logs")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if not options.quiet:
        print(summary.render(), flush=True)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=bench.chaos.__doc__)
    defaults = ChaosOptions()
    parser.add_argument("--employees", type=int, default=defaults.employees)
    parser.add_argument("--changes", type=int, default=defaults.changes)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--keep-logs", action="store_true", help="keep the logs even on success")
    parser.add_argument("--worker-kills", type=int, default=defaults.worker_kills)
    parser.add_argument("--redis-restarts", type=int, default=defaults.redis_restarts)
    parser.add_argument("--pace", type=float, default=defaults.pace, help="changes per second")
    parser.add_argument("--streams", type=int, default=defaults.streams)
    parser.add_argument("--log-level", default=defaults.log_level, help="of web and workers")
    parser.add_argument(
        "--lucca-budget",
        type=int,
        default=defaults.lucca_budget,
        help="LUCCA_BUDGET_OVERRIDE (requests a minute); 0: the tenant's own",
    )
    args = parser.parse_args(argv)
    options = ChaosOptions(
        employees=args.employees,
        changes=args.changes,
        seed=args.seed,
        keep_logs=args.keep_logs,
        worker_kills=args.worker_kills,
        redis_restarts=args.redis_restarts,
        pace=args.pace,
        streams=args.streams,
        lucca_budget=args.lucca_budget,
        log_level=args.log_level,
    )
    summary = asyncio.run(run(options))
    return 0 if summary.ok else 1

"""The checks: Elevo against the rules, what a reconciliation would still change, the
histories behind it, the reconciliation itself, and what the workers' logs tell."""

from __future__ import annotations

import contextlib
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from app.core.errors import InvalidLuccaUser
from app.core.lucca_user import parse_user
from app.core.rules import Standing, standing_of
from bench.chaos.options import CUSTOM_FIELDS, SKIP_FIELD, TENANT, Summary
from bench.chaos.pieces import ChaosStack
from stack.checks import consistency


@dataclass
class Verdict:
    checked: int
    mismatches: list[str]
    conflicts: list[str]
    wrongly_suspended: list[str]


async def verdict(chaos: ChaosStack) -> Verdict:
    """Elevo against the rules, and the profiles suspended although active in Lucca."""
    found = await consistency(
        chaos.lucca(), chaos.scim_access(), skip_field=SKIP_FIELD, custom_fields=CUSTOM_FIELDS
    )
    by_external = {p.external_id: p for p in found.profiles if p.external_id}
    wrong = []
    for item in found.dump["users"]:
        try:
            user = parse_user(item)
            standing = standing_of(user, skip_field=SKIP_FIELD, today=found.today)
        except InvalidLuccaUser:
            continue
        profile = by_external.get(user.id)
        if standing is Standing.ACTIVE and profile is not None and not profile.active:
            wrong.append(f"{user.id}: active in Lucca, profile {profile.id} suspended")
    report = found.report
    left_first = left_before_exclusion(chaos.sup.log_dir / "changes.jsonl")
    mismatches = [m for m in report.mismatches if not _explained(m, left_first)]
    return Verdict(report.checked, mismatches, report.conflicts, wrong)


_SUSPENDED_EXCLUDED = re.compile(r"^(\d+): excluded, yet suspended$")


def _explained(mismatch: str, left_first: set[str]) -> bool:
    """The final state alone cannot tell a wrong suspension from one the rules called for."""
    match = _SUSPENDED_EXCLUDED.match(mismatch)
    return match is not None and match.group(1) in left_first


def left_before_exclusion(journal: Path) -> set[str]:
    """Employees who left (a contract ended today or before) and were excluded after: the sync
    rightly suspended them when they left, and an exclusion's release touches nothing else
    (sync-rules.md), so their profile may stay suspended once they are rehired, excluded."""
    if not journal.exists():
        return set()
    left: set[str] = set()
    explained: set[str] = set()
    for line in journal.read_bytes().splitlines():
        change = orjson.loads(line)
        body = change.get("body") or {}
        user = str(body.get("user_id"))
        if change.get("kind") in ("departure_past", "departure_today"):
            left.add(user)
        elif change.get("kind") == "exclude" and user in left:
            explained.add(user)
    return explained


async def dry_run_plan(chaos: ChaosStack, summary: Summary) -> list[dict[str, Any]]:
    """What a reconciliation would still change: what the event path left undone."""
    run = await chaos.wait_run({"mode": "full", "dry_run": True}, 600)
    for entry in run.get("plan") or []:
        if entry.get("action") in ("unchanged", "skipped"):
            continue
        summary.plan[str(entry.get("action"))] += 1
        if len(summary.plan_samples) < 12:
            changes = (entry.get("diff") or {}).items()
            diff = "; ".join(f"{path.rsplit(':', 1)[-1]} {c['old']!r} -> {c['new']!r}"
                             for path, c in changes)  # fmt: skip
            why = str(entry.get("reason") or "")[:100]
            summary.plan_samples.append(
                f"user {entry.get('user')}: {entry.get('action')} {diff} ({why})"
            )
    return [e for e in run.get("plan") or [] if e.get("action") not in ("unchanged", "skipped")]


async def save_diagnostics(chaos: ChaosStack, plan: list[dict[str, Any]], before: Verdict) -> None:
    """What the event path left undone, with the histories of the users (and managers) involved:
    logs/diagnostics.json, to read when a run fails or the plan is not empty."""
    dump = await chaos.lucca().dump()
    users = {str(u["id"]): u for u in dump["users"]}
    involved = {str(e.get("user")) for e in plan}
    involved |= {text.split(":", 1)[0] for text in before.mismatches}
    wanted = set(involved)
    for uid in involved:
        manager = (users.get(uid) or {}).get("manager")
        if manager:
            wanted.add(str(manager["id"]))
    histories = {}
    for uid in sorted(wanted, key=lambda u: int(u) if u.isdigit() else 0):
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            histories[uid] = (await chaos.api.user(TENANT, uid))["history"]
    blob = {
        "mismatches_before_reconciliation": before.mismatches,
        "plan": plan,
        "lucca_users": {uid: users.get(uid) for uid in sorted(wanted)},
        "histories": histories,
    }
    path = chaos.sup.log_dir / "diagnostics.json"
    path.write_bytes(orjson.dumps(blob, option=orjson.OPT_INDENT_2, default=str))


async def reconcile(chaos: ChaosStack, summary: Summary) -> None:
    started = time.monotonic()
    run = await chaos.wait_run({"mode": "full"}, 900)
    summary.reconciliation = {
        "id": run.get("id"),
        "state": run.get("state"),
        "counts": run.get("counts", {}),
        "errors": run.get("errors") or {},
        "seconds": time.monotonic() - started,
    }
    if run.get("state") == "held":
        guard = (await chaos.api.status(TENANT)).get("safety_guard", {})
        summary.failures.append(
            f"the reconciliation was held by the safety guard (not confirmed): {guard}"
        )
    elif run.get("state") != "done":
        summary.failures.append(f"the reconciliation ended {run.get('state')}: {run}")


_RETRY = re.compile(r"retrying job in ([0-9.]+)s")
_FAILED = re.compile(r" ! \S+ failed, (\w+)")
# The service's own INFO line for a job it retries: "tenant=… user=… retry: <why>".
_CAUSES = (
    (re.compile(r"budget of tenant .* spent"), "Lucca budget"),
    (re.compile(r"(Lucca|Elevo) \S+ \S+ answered (\d+)"), "{0} {1}"),
    (re.compile(r"(Lucca|Elevo) \S+ \S+ failed: (\w+)"), "{0} {1}"),
)


_RUN_FAILED = re.compile(r"tenant=\S+ run=\S+ failed: (.*)")


def _retry_cause(message: str) -> str | None:
    if " retry: " not in message:
        return None
    why = message.split(" retry: ", 1)[1]
    for pattern, label in _CAUSES:
        if (found := pattern.search(why)) is not None:
            return label.format(*found.groups())
    return "other"


def _arq_lines(path: Path) -> set[tuple[str, str]]:
    """(hh:mm:ss, message) of every arq line of a worker's log, once: arq's own plain handler
    and the service's JSON one may both print it."""
    lines: set[tuple[str, str]] = set()
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
                record = orjson.loads(line)
                lines.add((str(record.get("time", ""))[11:19], str(record.get("message", ""))))
        elif re.match(r"\d\d:\d\d:\d\d: ", line):
            lines.add((line[:8], line[10:]))
    return lines


def scan_worker_logs(log_dir: Path) -> dict[str, Any]:
    """Retries and failed runs, as arq logs them (its job lines are at INFO whatever the
    service's LOG_LEVEL); only for the summary, nothing is decided on them."""
    delays: list[float] = []
    failed: Counter[str] = Counter()
    causes: Counter[str] = Counter()
    runs_failed: Counter[str] = Counter()
    started = 0
    for path in log_dir.glob("worker-*.log"):
        for _, message in _arq_lines(path):
            if (cause := _retry_cause(message)) is not None:
                causes[cause] += 1
            elif (found := _RUN_FAILED.search(message)) is not None:
                runs_failed[re.sub(r"[0-9.]+s\b", "…s", found[1])[:80]] += 1
            elif (found := _RETRY.search(message)) is not None:
                delays.append(float(found[1]))
            elif (found := _FAILED.search(message)) is not None:
                failed[found[1]] += 1
            elif " → " in message:
                started += 1
    found_out: dict[str, Any] = {
        "failed": sum(failed.values()),
        "failed_by": dict(failed),
        "runs_failed": dict(runs_failed),
    }
    if causes:  # only at LOG_LEVEL=INFO
        found_out["retry_causes"] = dict(causes.most_common())
    if not started:  # arq's INFO lines are not in the logs: retries cannot be counted
        return found_out
    return found_out | {
        "retries": len(delays),
        "retries_over_60s": sum(1 for d in delays if d > 60),
        "longest_retry_s": max(delays, default=0.0),
    }

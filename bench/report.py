"""Markdown tables of the latest results of every benchmark, for docs/benchmarks.md.

    .venv/bin/python -m bench.report            # reads bench/results/*-latest.json

Each section prints the date of the result file it read; a benchmark never run is skipped.
"""

from __future__ import annotations

import json
from typing import Any

from bench import fleet_report
from bench.results import RESULTS, markdown_table


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}-latest.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _head(title: str, data: dict[str, Any]) -> str:
    machine = data["machine"]
    code = f"git {machine.get('git_commit', '?')}"
    if machine.get("git_uncommitted"):
        code += " + uncommitted " + ", ".join(machine["git_uncommitted"])
    return f"\n**{title}** (`{data['date']}`, {code})\n"


def ingest() -> str:
    data = _load("webhook_ingest")
    if data is None:
        return ""
    rows = [
        [
            p["rep"], p["target"], p["mode"] + (f" {p['rate']:.0f}/s" if p["rate"] else ""),
            p["ok_rps"], p["p50_ms"], p["p99_ms"], p["p999_ms"], p["server_cpu_s"],
            p["redis_cpu_s"], p["loadgen_cpu_s"], p["redis_commands_per_request"],
        ]
        for p in data["phases"]
    ]  # fmt: skip
    s = data["summary"]
    out = [_head("Results", data)]
    out.append(
        markdown_table(
            ["rep", "target", "load", "2xx req/s", "p50 ms", "p99 ms", "p99.9 ms",
             "server CPU s", "redis CPU s", "loadgen CPU s", "redis cmds/req"],
            rows,
        )
    )  # fmt: skip
    out.append("")
    out.append(
        markdown_table(
            ["measure (median of repetitions)", "service", "anchor", "ratio", "goal", "met"],
            [
                ["closed-loop req/s", s["service_rps"], s["anchor_rps"],
                 s["throughput_ratio"], ">= 0.7", s["goal_throughput_met"]],
                ["p99 ms at 1,000 req/s", s["service_p99_at_rate_ms"],
                 s["anchor_p99_at_rate_ms"], s["p99_ratio_at_rate"], "<= 1.5",
                 s["goal_p99_met"]],
            ],
        )
    )  # fmt: skip
    return "\n".join(out)


def latency() -> str:
    out = []
    for scim in ("scim2", "fast"):
        data = _load(f"webhook_latency-{scim}")
        if data is None:
            continue
        rows = []
        for p in data["phases"]:
            for source in ("elevo", "run", "poll", "histogram"):
                s = p[source]
                rows.append(
                    [p["phase"], source, s["n"], s["p50_ms"], s["p95_ms"], s["p99_ms"],
                     s.get("max_ms", "-"), p["lucca_requests"]]
                )  # fmt: skip
        out.append(_head(f"Elevo = {scim}", data))
        out.append(
            markdown_table(
                ["phase", "measure", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "Lucca req"],
                rows,
            )
        )
        goals = [
            f"{p['phase']}: p99 {p['elevo']['p99_ms']} ms -> "
            f"{'met' if p['elevo']['p99_ms'] < 250 else 'missed'}"
            for p in data["phases"][:2]
        ]
        out.append("\nGoal p99 < 250 ms (elevo measure): " + "; ".join(goals) + ".")
    return "\n".join(out)


def throughput() -> str:
    out = []
    for scim in ("fast", "scim2"):
        data = _load(f"worker_throughput-{scim}")
        if data is None:
            continue
        rows = [
            [
                p["rep"], p["target"], p["changes"], p["visible"], p["elapsed_s"],
                p["users_per_s"], p["lucca_requests"], p["worker_cpu_s"], p["scim_cpu_s"],
                p["lucca_cpu_s"], p["redis_cpu_s"],
            ]
            for p in data["phases"]
        ]  # fmt: skip
        out.append(_head(f"Elevo = {scim}", data))
        out.append(
            markdown_table(
                ["rep", "worker", "changed", "landed", "s", "users/s", "Lucca req",
                 "worker CPU s", "SCIM CPU s", "Lucca CPU s", "redis CPU s"],
                rows,
            )
        )  # fmt: skip
        s = data["summary"]
        out.append(
            f"\nMedian: service {s['service_users_per_s']:.0f} users/s, anchor"
            f" {s['anchor_users_per_s']:.0f} users/s, ratio {s['ratio']:.2f}."
        )
    return "\n".join(out)


def reconcile() -> str:
    out = []
    for scim in ("fast", "scim2"):
        data = _load(f"reconcile_scale-{scim}")
        if data is None:
            continue
        rows = []
        for r in data["runs"]:
            ops = r.get("elevo_by_operation", {})
            rows.append(
                [
                    r["size"], r["run"], r["state"], r["wall_s"],
                    round(r["wall_s"] / (r["size"] / 1000), 2), r["lucca_requests"],
                    r["elevo_requests"],
                    ops.get("find_by_external_id", 0) + ops.get("find_by_user_name", 0),
                    r["peak_rss_mb"], r["cpu"].get("worker_cpu_s"), r["cpu"].get("scim_cpu_s"),
                    r["cpu"].get("redis_cpu_s"), r.get("run_sets", {}).get("follow_ups", "-"),
                    r["budget_floor_s"],
                ]
            )  # fmt: skip
        out.append(_head(f"Elevo = {scim}", data))
        out.append(
            markdown_table(
                ["employees", "run", "state", "wall s", "s per 1k", "Lucca req", "Elevo req",
                 "of which lookups", "worker peak RSS MB", "worker CPU s", "SCIM CPU s",
                 "redis CPU s", "follow-ups", "floor at 40/min, s"],
                rows,
            )
        )  # fmt: skip
        for r in data["runs"]:
            if r["size"] == 100_000 and r["run"] == "second":
                met = r["wall_s"] < 60 and r["peak_rss_mb"] < 300
                out.append(
                    f"\nGoal, 100,000 unchanged: {r['wall_s']} s (< 60 s) and"
                    f" {r['peak_rss_mb']} MB (< 300 MB) -> {'met' if met else 'missed'}."
                )
    return "\n".join(out)


def burst() -> str:
    out = []
    for scim in ("fast", "scim2"):
        data = _load(f"burst_budget-{scim}")
        if data is None:
            continue
        after = data["consistency_after"]
        out.append(_head(f"Elevo = {scim}", data))
        out.append(
            markdown_table(
                ["changed", "webhooks 202", "delivered in s", "Lucca requests",
                 "consistent after s", "mismatches after", "goal <= 25 req", "goal < 60 s"],
                [[
                    data["changes"], data["accepted"], data["delivery_s"],
                    data["lucca_requests"], data["consistent_after_s"], after["mismatches"],
                    (data["lucca_requests"] or 0) <= 25,
                    data["consistent_after_s"] is not None and data["consistent_after_s"] < 60,
                ]],
            )
        )  # fmt: skip
    return "\n".join(out)


def fairness() -> str:
    data = _load("fairness-fast")
    if data is None:
        return ""
    rows = [
        [
            p["phase"], p["n"], p["p50_ms"], p["p95_ms"], p["p99_ms"], p["max_ms"],
            p.get("a_state", "-"), p.get("a_wall_s", "-"), p.get("a_running_throughout", "-"),
        ]
        for p in data["phases"]
    ]  # fmt: skip
    base = data["phases"][0]["p99_ms"]
    worst = max(p["p99_ms"] for p in data["phases"])
    return "\n".join(
        [
            _head("Elevo = fast", data),
            markdown_table(
                ["phase", "B changes", "p50 ms", "p95 ms", "p99 ms", "max ms", "A state",
                 "A run s", "A ran throughout"],
                rows,
            ),
            f"\nB's p99 grows {worst / base:.1f}x while A reconciles.",
        ]
    )  # fmt: skip


def fleet() -> str:
    data = _load("fleet")
    if data is None:
        return ""
    return _head("Fleet", data) + "\n" + fleet_report.render(data)


SECTIONS = {
    "RESULTS_INGEST": ingest,
    "RESULTS_LATENCY": latency,
    "RESULTS_THROUGHPUT": throughput,
    "RESULTS_RECONCILE": reconcile,
    "RESULTS_BURST": burst,
    "RESULTS_FAIRNESS": fairness,
    "RESULTS_FLEET": fleet,
}


def main() -> None:
    for marker, render in SECTIONS.items():
        print(f"<!-- {marker} -->")
        print(render())
        print()


if __name__ == "__main__":
    main()

"""The fleet benchmark's markdown tables (printed by bench.fleet, rendered by bench.report)."""

from __future__ import annotations

from typing import Any

from bench.results import markdown_table

PROCESSES = ("worker-1", "worker-2", "web", "redis", "lucca", "scim", "bench")


def _cpu(phase: dict[str, Any]) -> list[Any]:
    cpu = phase["cpu_s"]
    return [cpu.get(f"{p}_cpu_s", "-") for p in PROCESSES]


def phases_table(data: dict[str, Any]) -> str:
    names = ("first_sync", "work_hours", "night", "idle")
    rows = []
    for phase in [data[n] for n in names if n in data] + data.get("throughput", []):
        rows.append(
            [
                phase["phase"], f"{phase['units']:,} {phase['unit']}s", phase["wall_s"],
                phase["redis_commands"], phase["commands_per_unit"],
                phase["worker_cpu_ms_per_unit"], *_cpu(phase),
                " / ".join(str(v) for v in phase["loadavg_1m"]),
            ]
        )  # fmt: skip
    headers = [
        "phase", "work", "wall s", "Redis cmds", "cmds per unit", "worker CPU ms per unit",
        *(f"{p} CPU s" for p in PROCESSES), "load 1m start / end",
    ]  # fmt: skip
    return markdown_table(headers, rows)


def throughput_table(data: dict[str, Any]) -> str:
    rows = []
    for p in data.get("throughput", []):
        used = sum(v for v in p["cpu_s"].values() if isinstance(v, float))
        per_cpu = round(p["units"] / used, 1) if used else "-"
        rows.append([p["rep"], p["workers"], p["units"], p["wall_s"], p["changes_per_s"],
                     round(used, 2), per_cpu, *_cpu(p)])  # fmt: skip
    headers = ["rep", "worker processes", "changes", "s", "changes/s", "CPU s, all",
               "changes per CPU s"]  # fmt: skip
    return markdown_table(headers + [f"{p} CPU s" for p in PROCESSES], rows)


def memory_tables(data: dict[str, Any]) -> str:
    memory = data["memory"]
    m = memory["model"]
    used = memory["used_memory"]
    employees = data["employees"]
    rows = [
        [label, round(value / 1e6, 1), round((value - used["baseline"]) / max(employees, 1), 1)]
        for label, value in used.items()
    ]
    out = [markdown_table(["moment", "used_memory MB", "bytes per employee over baseline"], rows)]
    terms = m["terms"]
    out += ["", "terms: " + ", ".join(f"{k} = {v}" for k, v in terms.items())]
    at_r, full = m["retention"], m["history_full"]
    drivers = sorted(set(at_r["by_driver"]) | set(full["by_driver"]))
    rows = [[d, at_r["by_driver"].get(d, 0.0), full["by_driver"].get(d, 0.0)] for d in drivers]
    rows.append(["history entries per employee", at_r["history_entries_per_employee"],
                 full["history_entries_per_employee"]])  # fmt: skip
    rows.append(["**total bytes per employee**", at_r["bytes_per_employee"],
                 full["bytes_per_employee"]])  # fmt: skip
    headers = [
        f"extrapolated (measured now: {m['measured_bytes_per_employee']} B per employee)",
        f"after R = {terms['R']:.0f} days", "any later day (entries kept R days)",
    ]  # fmt: skip
    out += ["", markdown_table(headers, rows)]
    return "\n".join(out)


def census_table(data: dict[str, Any]) -> str:
    census = data["memory"]["census"]
    shapes = data["memory"]["model"]["shapes"]
    rows = [
        [
            name, c["keys"], c["bytes_per_key"], c["bytes"], c["entries"],
            c["ttl_max_s"] or "none", shapes.get(name, {}).get("driver", "history"),
            shapes.get(name, {}).get("kept_bytes", "-"),
        ]
        for name, c in sorted(census.items(), key=lambda kv: -kv[1]["bytes"])
    ]  # fmt: skip
    headers = [
        "key shape", "keys", "bytes per key", "bytes", "list entries", "TTL max s", "driver",
        "kept at R days, bytes",
    ]  # fmt: skip
    return markdown_table(headers, rows)


def render(data: dict[str, Any]) -> str:
    fleet = f"{data['args']['tenants']:,} tenants x {data['args']['size']:,} employees"
    return "\n".join(
        [
            f"Fleet: {fleet}; registered in {data['register_s']} s; runs: first"
            f" {data['first_sync'].get('run_states')}, night {data['night'].get('run_states')}.",
            "",
            phases_table(data),
            "",
            throughput_table(data),
            "",
            memory_tables(data),
            "",
            census_table(data),
        ]
    )


def print_tables(data: dict[str, Any]) -> None:
    print()
    print(render(data))

"""Two commits side by side: the same benchmarks, alternated base, head, base, head...

Issue 9's check: the ingest ratio and the webhook -> Elevo latency of docs/benchmarks.md are
within 10 % of the starting commit's, as medians of alternated repetitions of both commits in
one run. Each commit is checked out in a temporary `git worktree add --detach` (removed at the
end). Every repetition runs the benchmark's own CLI as a subprocess with cwd and PYTHONPATH set
to that commit's tree, so its app/, workers/, simulators/ and bench/ are what runs: PYTHONPATH
comes before this venv's editable install on sys.path (checked before the runs by importing
them in a child, and after each run by the commit the result JSON records). Both commits run
with this venv's packages, so they must share their dependencies.

    .venv/bin/python -m bench.compare --base 3041211 --head HEAD --reps 5 --bench ingest,latency
    .venv/bin/python -m bench.compare --base 3041211 --head 3041211 --quick   # smoke run

Prints a markdown table and writes bench/results/compare-<date>.json (the trees' own results
and logs go to bench/results/compare-<date>/). Exit status 1 when a gated metric of head is
worse than base's by more than --tolerance (latency: higher is worse; throughput and ratio:
lower is worse) unless --no-fail; 2 when a run failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import log
from bench.results import RESULTS, machine, markdown_table, write_results
from stack.procfile import ROOT

Picker = Callable[[Mapping[str, Any]], float]


@dataclass(frozen=True)
class Metric:
    name: str
    pick: Picker
    higher_is_better: bool
    gated: bool = True  # informational metrics are shown but never fail the comparison


@dataclass(frozen=True)
class Benchmark:
    key: str
    module: str
    full_args: str  # the CLI's options, split as a shell would
    quick_args: str
    metrics: tuple[Metric, ...]
    timeout_s: float  # one full-size run; a run past it is killed and counted as failed


def _summary(key: str) -> Picker:
    return lambda doc: float(doc["summary"][key])


def _phase(prefix: str, key: str) -> Picker:
    """`elevo` latency `key` of the latency phase whose label starts with `prefix`."""

    def pick(doc: Mapping[str, Any]) -> float:
        for phase in doc["phases"]:
            if str(phase["phase"]).startswith(prefix):
                return float(phase["elevo"][key])
        return math.nan

    return pick


# The compare script repeats and alternates the runs itself, so the ingest benchmark runs
# one repetition of its own (closed + open loop, service and anchor) per run; the latency
# benchmark skips phase c (its floor is the budget, not the code) and uses fastscim, the
# Elevo that does not reset connections under load (docs/benchmarks.md, problem 6).
BENCHMARKS: dict[str, Benchmark] = {
    "ingest": Benchmark(
        key="ingest",
        module="bench.webhook_ingest",
        full_args="--repeat 1",
        quick_args="--duration 5 --warmup 1 --repeat 1",
        metrics=(
            Metric("ingest: service/anchor req/s", _summary("throughput_ratio"), True),
            Metric("ingest: service req/s", _summary("service_rps"), True),
            Metric("ingest: anchor req/s", _summary("anchor_rps"), True, gated=False),
            Metric("ingest: p99 ms at 1000/s", _summary("service_p99_at_rate_ms"), False, False),
        ),
        timeout_s=900,
    ),
    "latency": Benchmark(
        key="latency",
        module="bench.webhook_latency",
        full_args="--scim fast --budget-duration 0",
        quick_args="--scim fast --size 1200 --duration 10 --slow-duration 10 --budget-duration 0",
        metrics=(
            Metric("latency a (50/s, lifted): p50 ms", _phase("a:", "p50_ms"), False),
            Metric("latency a (50/s, lifted): p99 ms", _phase("a:", "p99_ms"), False),
            # 30 changes per run: p99 is their maximum, too noisy to gate on.
            Metric("latency b (0.5/s, budget): p50 ms", _phase("b:", "p50_ms"), False, False),
            Metric("latency b (0.5/s, budget): p99 ms", _phase("b:", "p99_ms"), False, False),
        ),
        timeout_s=1200,
    ),
}


@dataclass
class Tree:
    label: str  # "base" or "head"
    ref: str  # as given on the command line
    commit: str  # full sha
    path: Path


@dataclass
class Run:
    bench: str
    side: str
    rep: int
    seconds: float
    result_file: str | None = None
    values: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def _git(*argv: str) -> str:
    done = subprocess.run(
        ["git", *argv], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.strip()


@contextlib.contextmanager
def checkout(label: str, ref: str, keep_results: Path) -> Iterator[Tree]:
    """The commit `ref` in a temporary detached worktree; its bench/results are kept."""
    try:
        commit = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except subprocess.CalledProcessError:
        raise SystemExit(f"{label}: {ref!r} is not a commit of {ROOT}") from None
    parent = Path(tempfile.mkdtemp(prefix=f"compare-{label}-"))
    path = parent / "tree"
    _git("worktree", "add", "--detach", "--quiet", str(path), commit)
    try:
        yield Tree(label, ref, commit, path)
    finally:
        with contextlib.suppress(OSError):
            if (path / "bench" / "results").is_dir():
                shutil.copytree(path / "bench" / "results", keep_results / label)
        with contextlib.suppress(subprocess.SubprocessError):
            _git("worktree", "remove", "--force", str(path))
        shutil.rmtree(parent, ignore_errors=True)
        with contextlib.suppress(subprocess.SubprocessError):
            _git("worktree", "prune")


def _child_env(tree: Tree) -> dict[str, str]:
    # Replaced, not prepended: an inherited PYTHONPATH naming this tree would win otherwise.
    return {**os.environ, "PYTHONPATH": str(tree.path), "PYTHONUNBUFFERED": "1"}


def _die_with_parent() -> None:
    """In the child: SIGTERM when this script dies; the benchmark's own children follow it."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def check_imports(tree: Tree) -> dict[str, str]:
    """Where a child started like the benchmarks imports the service's packages from."""
    code = (
        "import json, app, workers, simulators, bench; "
        "print(json.dumps({m.__name__: m.__file__ for m in (app, workers, simulators, bench)}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tree.path,
        env=_child_env(tree),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    files: dict[str, str] = json.loads(done.stdout)
    for name, file in files.items():
        if not Path(file).resolve().is_relative_to(tree.path.resolve()):
            raise SystemExit(f"{tree.label}: {name} imported from {file}, not from {tree.path}")
    return files


def _result_path(tree: Tree, output: str) -> Path | None:
    """The JSON the run wrote: its `results: <path>` line, else the newest in bench/results."""
    for line in reversed(output.splitlines()):
        if line.startswith("results: "):
            return tree.path / line.removeprefix("results: ").strip()
    found = [p for p in (tree.path / "bench" / "results").glob("*.json") if "-latest" not in p.name]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def run_once(
    bench: Benchmark, tree: Tree, rep: int, args: argparse.Namespace, log_dir: Path
) -> Run:
    options = shlex.split(bench.quick_args if args.quick else bench.full_args)
    options += shlex.split(args.extra.get(bench.key, ""))  # the CLI's last value wins
    argv = [sys.executable, "-m", bench.module, *options]
    log_file = log_dir / f"{bench.key}-{tree.label}-{rep}.log"
    started = time.monotonic()
    run = Run(bench.key, tree.label, rep, 0.0)
    try:
        done = subprocess.run(
            argv,
            cwd=tree.path,
            env=_child_env(tree),
            capture_output=True,
            text=True,
            check=False,
            timeout=bench.timeout_s,
            preexec_fn=_die_with_parent,
        )
        output = done.stdout + done.stderr
        failed = f"exit status {done.returncode}" if done.returncode else None
    except subprocess.TimeoutExpired as exc:  # its output is bytes whatever `text` says
        output = b"".join(o for o in (exc.stdout, exc.stderr) if isinstance(o, bytes)).decode()
        failed = f"killed after {bench.timeout_s:.0f} s"
    run.seconds = round(time.monotonic() - started, 1)
    log_file.write_text(f"$ {shlex.join(argv)}\n# cwd={tree.path} PYTHONPATH={tree.path}\n{output}")
    path = None if failed else _result_path(tree, output)
    if path is None:
        run.error = f"{failed or 'no result JSON'}: see {log_file}"
        return run
    run.result_file = path.name
    try:
        document = json.loads(path.read_text())
        run.values = {m.name: m.pick(document) for m in bench.metrics}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        run.error = f"{path}: {exc!r}"
    recorded = str(document.get("machine", {}).get("git_commit", "")) if run.values else ""
    if recorded and not tree.commit.startswith(recorded):  # the other tree's code ran
        run.error, run.values = f"the run recorded commit {recorded}, not {tree.commit}", {}
    return run


def _median(values: Sequence[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return float(statistics.median(kept)) if kept else math.nan


def compare(
    runs: Sequence[Run], benches: Sequence[Benchmark], tolerance: float
) -> list[dict[str, Any]]:
    """Per metric: every value, medians, head/base, and whether head is within tolerance."""
    rows: list[dict[str, Any]] = []
    for metric in (metric for bench in benches for metric in bench.metrics):
        name = metric.name
        base = [r.values[name] for r in runs if r.side == "base" and name in r.values]
        head = [r.values[name] for r in runs if r.side == "head" and name in r.values]
        base_median, head_median = _median(base), _median(head)
        ratio = head_median / base_median if base_median else math.nan
        worse_by = (1 - ratio) if metric.higher_is_better else (ratio - 1)
        rows.append(
            {
                "metric": metric.name,
                "higher_is_better": metric.higher_is_better,
                "gated": metric.gated,
                "base_median": base_median,
                "head_median": head_median,
                "head_over_base": round(ratio, 3),
                "worse_by": round(worse_by, 3),
                "within": bool(worse_by <= tolerance),  # NaN (no values) is not within
                "base_values": base,
                "head_values": head,
            }
        )
    return rows


def _verdict(row: Mapping[str, Any], tolerance: float) -> str:
    word = "yes" if row["within"] else "no"
    if row["within"] and row["worse_by"] < -tolerance:
        word += f" (better by {-row['worse_by']:.0%})"
    return word if row["gated"] else f"{word} (info)"


def render(rows: Sequence[Mapping[str, Any]], tolerance: float) -> str:
    def listed(values: Sequence[float]) -> str:
        return ", ".join(f"{v:,.3g}" if abs(v) < 10 else f"{v:,.1f}" for v in values)

    def cells(row: Mapping[str, Any]) -> list[Any]:
        medians = [row[key] for key in ("base_median", "head_median", "head_over_base")]
        values = [listed(row["base_values"]), listed(row["head_values"])]
        return [row["metric"], *medians, _verdict(row, tolerance), *values]

    within = f"within {tolerance:.0%}?"
    headers = ["metric", "base median", "head median", "head/base", within, "base", "head"]
    return markdown_table(headers, [cells(row) for row in rows])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("--base", default="3041211", help="the commit to compare against")
    parser.add_argument("--head", default="HEAD", help="the commit under test")
    parser.add_argument("--reps", type=int, help="runs of each commit (5; 1 with --quick)")
    parser.add_argument("--bench", default="ingest,latency", help=f"of {','.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="smallest sizes: checks it works")
    parser.add_argument("--tolerance", type=float, default=0.10, help="allowed fraction worse")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even when head is worse")
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="BENCH=OPTIONS",
        help="more options for one benchmark's CLI, e.g. 'latency=--scim scim2'",
    )
    args = parser.parse_args(argv)
    args.extra = dict(item.split("=", 1) for item in args.extra if "=" in item)
    args.reps = args.reps or (1 if args.quick else 5)
    unknown = set(args.bench.split(",")) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}")
    return args


def alternate(
    args: argparse.Namespace, benches: Sequence[Benchmark], kept: Path
) -> tuple[list[Run], dict[str, dict[str, Any]]]:
    """Every run, base, head, base, head...; and per side its commit and where it imported."""
    runs: list[Run] = []
    with (
        checkout("base", args.base, kept) as base,
        checkout("head", args.head, kept) as head,
    ):
        trees: dict[str, dict[str, Any]] = {
            t.label: {"ref": t.ref, "commit": t.commit, "imports": check_imports(t)}
            for t in (base, head)
        }
        kept.mkdir(parents=True)
        for label, tree in trees.items():
            log(f"{label} {tree['ref']} = {tree['commit'][:12]}: app from {tree['imports']['app']}")
        for rep in range(1, args.reps + 1):
            for bench in benches:
                for side in (base, head):
                    log(f"rep {rep}/{args.reps}: {bench.key} on {side.label}")
                    run = run_once(bench, side, rep, args, kept)
                    runs.append(run)
                    shown = "; ".join(f"{k} {v:,.4g}" for k, v in run.values.items())
                    log(f"  {run.seconds:.0f} s: {run.error or shown}")
    return runs, trees


def main() -> None:
    args = parse_args()
    benches = [BENCHMARKS[key] for key in args.bench.split(",")]
    kept = RESULTS / f"compare-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    command = shlex.join([".venv/bin/python", "-m", "bench.compare", *sys.argv[1:]])
    started = time.monotonic()
    runs, trees = alternate(args, benches, kept)
    wall = round(time.monotonic() - started, 1)
    rows = compare(runs, benches, args.tolerance)
    info = machine()
    for label, tree in trees.items():
        print(f"\n{label}: {tree['ref']} = {tree['commit'][:12]}", end="")
    print(
        f"\nmachine: {info['nproc']} cores, {info['cpu']}, {info['memory_gib']} GiB,"
        f" Python {info['python']}, load average at the end {os.getloadavg()[0]:.2f}"
    )
    print(f"command: {command}")
    print(f"{args.reps} alternated repetition(s) of each commit, {wall / 60:.1f} min in all\n")
    print(render(rows, args.tolerance))
    failed_runs = [r for r in runs if r.error]
    for run in failed_runs:
        print(f"FAILED: {run.bench} {run.side} rep {run.rep}: {run.error}")
    document = {"command": command, "args": vars(args), "trees": trees, "wall_seconds": wall}
    document |= {"runs": [vars(r) for r in runs], "metrics": rows}
    write_results("compare", document | {"kept": str(kept.relative_to(ROOT))})
    worse = [r["metric"] for r in rows if r["gated"] and not r["within"]]
    if failed_runs:
        sys.exit(2)
    if worse and not args.no_fail:
        print(f"head is worse than base by more than {args.tolerance:.0%}: {', '.join(worse)}")
        sys.exit(1)


if __name__ == "__main__":
    main()

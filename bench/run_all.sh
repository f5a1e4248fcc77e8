#!/usr/bin/env bash
# Every benchmark at its full size, one after the other (~90-100 min on 2 cores).
# Each writes bench/results/<name>-<date>.json (+ -latest.json) and prints a markdown table;
# this script also keeps their output in bench/results/run_all-<date>.log.
# Usage: bash bench/run_all.sh            (QUICK=1 for reduced sizes, ~16 min)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p bench/results
LOG="bench/results/run_all-$(date -u +%Y%m%dT%H%M%SZ).log"
# A benchmark that fails does not stop the others.
run() { echo "== $*" | tee -a "$LOG"; "$PY" -m "$@" 2>&1 | tee -a "$LOG" || true; }
if [ "${QUICK:-0}" = 1 ]; then
  run bench.webhook_ingest --duration 5 --warmup 1 --repeat 1
  run bench.webhook_latency --scim fast --size 1200 --duration 10 --slow-duration 10 --budget-duration 5
  run bench.worker_throughput --size 2000 --changes 400 --repeat 1
  run bench.reconcile_scale --sizes 1000,5000
  run bench.burst_budget --size 600 --changes 500
  run bench.fairness --a-size 3000 --b-size 500 --duration 8
  run bench.fleet --tenants 50 --size 200 --day-seconds 60 --burst 500 --onboard 4
  run bench.fairness --a-size 3000 --b-size 500 --duration 8 --runs-worker
  run bench.latency_settings --size 600 --rate 5 --duration 5 --idle 2 --repeat 1
  # bench.compare at its smallest, the tree against itself: checks the script works (2-3 min).
  # Its real use (two commits, 5 repetitions, ~40 min) is a separate command: docs/benchmarks.md.
  run bench.compare --base HEAD --head HEAD --quick --no-fail
  exit 0
fi
run bench.webhook_ingest --profile
run bench.webhook_latency --scim scim2
run bench.webhook_latency --scim fast
run bench.worker_throughput --scim fast
run bench.worker_throughput --scim scim2 --size 4500 --changes 1000 --within 300
run bench.reconcile_scale --scim fast --profile
run bench.reconcile_scale --scim scim2 --sizes 1000,10000 --within 600
run bench.burst_budget --scim fast
run bench.burst_budget --scim scim2
run bench.fairness --scim fast
# The fleet at the size that fits in ~20 min on 2 shared cores; the issue's 1,000 x 1,000 is
# `bench.fleet` without arguments (its onboarding alone takes about 3 h there: docs/scaling.md).
run bench.fleet --tenants 100 --size 1000 --day-seconds 300 --burst 1000
run bench.fairness --scim fast --runs-worker
run bench.latency_settings
"$PY" -m bench.report | tee -a "$LOG"

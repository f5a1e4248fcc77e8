"""The chaos suite: the whole service under faults, then a check that Elevo equals the rules.

    python -m bench.chaos [--quick] [--employees 500 --changes 800] [--seed N] [--keep-logs]

It starts, on free loopback ports, a Redis of its own (`--appendonly yes`, as production runs
it; the shared Redis on 6379 is never touched), the Lucca simulator, scim2-server as Elevo,
the fault proxy (simulators/faultproxy.py) in front of scim2-server, and the service's web
process and TWO worker processes with the Procfile's command lines, restarted whenever they
exit (restart=always, like a process supervisor). Then:

1. registers a tenant (its Elevo SCIM URL goes through the fault proxy), polled each minute,
   and beside it two that break once it has had its full sync: one whose stored config is
   overwritten with unreadable bytes, one whose Lucca key Lucca refuses from then on;
2. injects faults: Lucca answers 5% 500s plus a few bursts of 429 with Retry-After and one
   storm (every request answered 429 for `--lucca-storm` seconds, 30), the proxy answers 5%
   503s and lets 2% of the requests hang past the service's HTTP timeout (half of those after
   forwarding them: a timed-out write may have been applied), and once Elevo stalls for
   `--elevo-stall` seconds (40: every request hangs, half of them applied first);
3. plays N seeded random HR changes through the simulator's control API and sends the events
   as signed webhooks, with ~10% duplicates, shuffled in windows, in a few concurrent streams
   (a 5xx is retried like Lucca does, with shortened waits); meanwhile it SIGKILLs a worker
   twice and restarts Redis once (SHUTDOWN, which flushes the AOF, then the same port and dir);
4. clears the faults, waits for quiescence (nothing queued, nothing in progress: a SIGKILLed
   job re-runs once its worker's heartbeat lapses: `WORKER_DEAD_AFTER_SECONDS`, 20) while
   comparing Elevo with Lucca every 5 s (when did the last change land?), checks consistency once,
   asks for a dry-run plan, runs one full reconciliation (a safety guard holding it is a
   finding: never confirmed here), and checks again: 0 mismatches, and no profile suspended
   whose Lucca user is active (excluded users are never suspended by the sync).

It prints what it injected and what was recovered, and exits non-zero on any mismatch (or
wrong suspension, or a held or failed reconciliation), on more Lucca requests in any 60 s
window than the tenant's budget (40; the simulator's own request log, 429s included, the
initial sync too), on a change that lands in Elevo later than `--landing-deadline` seconds
(120) after the faults stopped (by the event path, or else by the reconciliation), and on a
broken tenant not flagged in its own status, the healthy one flagged, or not polled since
the others broke. The check before the reconciliation, the dry-run plan and the worker-log
counts are shown but do not fail the suite: they tell how far the event path alone got.
The logs (kept with --keep-logs, or on failure) hold every process's output,
`changes.jsonl` (each change played, with its event ids) and `diagnostics.json` (what the
reconciliation still had to do, with the histories of the users and managers involved).
`bench.chaos.run.run()` is the coroutine the CI test (tests/chaos/) calls at a reduced size;
`--quick` is a smoke of every fault at a small size.

The modules: `options` (options and the summary), `changes` (the seeded HR changes),
`pieces` (the stack, the tenant, quiescence), `player` (changes played as webhooks),
`faults` (what is injected and disrupted), `broken` (the broken tenants), `promises` (the
budget's windows, the landing deadline), `verdict` (the checks and diagnostics), `run`.
"""

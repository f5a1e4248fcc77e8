"""What a run keeps once it ends (RunStore.set_state): a real run's `unchanged` outcomes as a
count (sync-rules.md: `unchanged` is counted per run), a few outcomes in the run's record,
and what is left of its outcomes' hash compactly encoded. The readers of a run's counts and
outcomes (app/store/runs.py, run_rows.py) add what was folded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import orjson
from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

from app.store import keys
from app.store.redis_text import as_text

# A real run that ended keeps its `unchanged` outcomes as a count only (sync-rules.md:
# `unchanged` is counted per run): these users' fields go from `run_users` (KEYS[1]) to the
# run's QUIET_UNCHANGED field (KEYS[2]) in one step, so that a reader never counts one twice
# or not at all. ARGV: users last seen `unchanged`. A run whose record is gone keeps its hash.
_FOLD_UNCHANGED = """
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local quiet = {}
for i = 1, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == 'unchanged' then quiet[#quiet + 1] = ARGV[i] end
end
if #quiet == 0 then return 0 end
redis.call('HDEL', KEYS[1], unpack(quiet))
redis.call('HINCRBY', KEYS[2], 'quiet_unchanged', #quiet)
return #quiet
"""
# A run that ended with a few outcomes (a webhook's: one) keeps them in its record, as JSON
# (KEYS[1] field `outcomes`), not in a hash of their own (KEYS[2]): 136 bytes less per
# webhook, kept 3 days. ARGV[1]: at most this many outcomes, ARGV[2]: at most this many bytes
# of JSON (a longer value turns the record's compact encoding into a table, twice the size).
# More outcomes, but few enough for a compact hash (ARGV[3]): the hash is written afresh, as a
# table shrunk by the fold keeps its size (a nightly run's: 13 KB instead of 2).
_INLINE_OUTCOMES = """
local n = redis.call('HLEN', KEYS[2])
if n == 0 or n > tonumber(ARGV[3]) then return 0 end
local flat = redis.call('HGETALL', KEYS[2])
local run = redis.call('HMGET', KEYS[1], 'state', 'outcomes')
if not run[1] then return 0 end
local outcomes = {}
if run[2] then outcomes = cjson.decode(run[2]) end
for i = 1, #flat, 2 do outcomes[flat[i]] = flat[i + 1] end
local encoded = cjson.encode(outcomes)
local ttl = redis.call('PTTL', KEYS[2])
redis.call('DEL', KEYS[2])
if n <= tonumber(ARGV[1]) and #encoded <= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'outcomes', encoded)
  return 1
end
redis.call('HSET', KEYS[2], unpack(flat))
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 2
"""
# The fields of a run record that hold outcomes folded when it ended (not shown as such:
# `counts` and `processed` include them).
QUIET_UNCHANGED = "quiet_unchanged"
INLINE_OUTCOMES = "outcomes"
FOLDED = frozenset({QUIET_UNCHANGED, INLINE_OUTCOMES})
FOLD_CHUNK = 1000
INLINE_MAX = 8
INLINE_BYTES = 64  # Redis' hash-max-listpack-value
COMPACT_HASH = 128  # Redis' hash-max-listpack-entries


def inline_outcomes(fields: Mapping[str, str]) -> dict[str, str]:
    """The outcomes a run that ended keeps in its record (user -> outcome)."""
    raw = fields.get(INLINE_OUTCOMES)
    return {str(u): str(a) for u, a in orjson.loads(raw).items()} if raw else {}


def with_quiet(counts: Mapping[str, int], fields: Mapping[str, str]) -> dict[str, int]:
    """A run's counts per outcome: its outcomes' (`run_users`), and those it folded into its
    record when it ended (the `unchanged` count, a few outcomes inline)."""
    found = Counter(counts) + Counter(inline_outcomes(fields).values())
    quiet = int(fields.get(QUIET_UNCHANGED) or 0)
    if quiet:
        found["unchanged"] += quiet
    return dict(found)


def stage_inline(pipe: Pipeline, tenant: str, run_id: str) -> None:
    run_key, users_key = keys.run(tenant, run_id), keys.run_users(tenant, run_id)
    limits = (INLINE_MAX, INLINE_BYTES, COMPACT_HASH)
    pipe.eval(_INLINE_OUTCOMES, 2, run_key, users_key, *map(str, limits))


async def fold_unchanged(redis: ArqRedis, tenant: str, run_id: str) -> None:
    """A real run's `unchanged` outcomes become a count (a nightly run's are nearly every
    employee's: 53 bytes each, kept 30 days); a dry run keeps them, its plan lists every
    user. A chunk at a time, so that a run of 100,000 never holds Redis long."""
    run_key, users_key = keys.run(tenant, run_id), keys.run_users(tenant, run_id)
    if as_text(await redis.hget(run_key, "dry_run")) == "1":
        return
    cursor = 0
    while True:
        cursor, found = await redis.hscan(users_key, cursor, count=FOLD_CHUNK)
        quiet = [user for user, action in found.items() if action == b"unchanged"]
        # HSCAN's count is a hint: a chunk stays far under what a script may unpack.
        for start in range(0, len(quiet), FOLD_CHUNK):
            chunk = quiet[start : start + FOLD_CHUNK]
            await redis.eval(_FOLD_UNCHANGED, 2, users_key, run_key, *chunk)
        if cursor == 0:
            return

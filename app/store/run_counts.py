"""A run's per-user outcomes as they are counted: the one script that notes them and settles
the run's state in the same step, and what it answers (app/store/runs.py stages it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio.client import Pipeline

from app.store import keys, webhook_hours
from app.store.redis_text import as_text
from app.store.run_model import Trigger, utcnow_iso

# Notes outcomes (KEYS[1]: the run's users; ARGV[7...]: user, action pairs) and settles the
# run (KEYS[2]) in the same step: a run that counted all it expects is done (ARGV[1]: now;
# the caller then does what an ended run does, RunStore.ended), one still queued is running.
# Its keys live ARGV[2] seconds, a webhook's run's ARGV[3] (and a late count's for a run
# whose record is gone: it has nothing to show them with). A webhook's run also adds each
# outcome that changes to its hour's aggregate (KEYS[3], fields ARGV[4] .. action, the hash
# ending at ARGV[5]: app/store/webhook_hours.py): the previous outcome is taken back, so a
# count retried, even after the run ended and kept its outcome in its record, adds nothing.
# Only a run in the webhooks' index (KEYS[4]; ARGV[6]: the run's id) counts there: one
# created before that index, in the runs' index, is shown from its record (console_runs).
# Answers the users counted, the run's fields after, and 1 when this count ended the run.
_COUNT_AND_SETTLE = (
    """
local f = redis.call('HMGET', KEYS[2], 'expected', 'state', 'created_at', 'trigger', 'outcomes')
local trigger = f[4] or ''
local webhook = """
    + Trigger.lua_from_webhook("trigger")
    + """
local hourly = webhook and redis.call('ZSCORE', KEYS[4], ARGV[6])
local ttl = ARGV[2]
if webhook or not f[2] then ttl = ARGV[3] end
local kept = {}
if webhook and f[5] then kept = cjson.decode(f[5]) end
for i = 7, #ARGV, 2 do
  local previous = redis.call('HGET', KEYS[1], ARGV[i]) or kept[ARGV[i]]
  local new = ARGV[i + 1]
  local lesser = new == 'unchanged' or new == 'superseded'
    or (new == 'update' and (previous == 'create' or previous == 'adopt'))
  if previous ~= new and not (previous and lesser) then
    redis.call('HSET', KEYS[1], ARGV[i], new)
    if hourly then
      if previous and redis.call('HINCRBY', KEYS[3], ARGV[4] .. previous, -1) == 0 then
        redis.call('HDEL', KEYS[3], ARGV[4] .. previous)
      end
      -- A field new to the hash may be the hash's first (a run created before its hour
      -- had one): it is given its end; the others keep the one the run's creation gave.
      if redis.call('HINCRBY', KEYS[3], ARGV[4] .. new, 1) == 1 then
        redis.call('EXPIREAT', KEYS[3], ARGV[5])
      end
    end
  end
end
redis.call('EXPIRE', KEYS[1], ttl)
local processed = redis.call('HLEN', KEYS[1])
local expected, state, ended = f[1], f[2], 0
if state == 'queued' or state == 'running' then
  if expected and expected ~= '' and processed >= tonumber(expected) then
    state, ended = 'done', 1
    redis.call('HSET', KEYS[2], 'state', state, 'finished_at', ARGV[1])
    redis.call('EXPIRE', KEYS[2], ttl)
  elseif state == 'queued' then
    state = 'running'
    redis.call('HSET', KEYS[2], 'state', state, 'started_at', ARGV[1])
    redis.call('EXPIRE', KEYS[2], ttl)
  end
end
return {processed, expected or '', state or '', f[3] or '', trigger, ended}
"""
)


@dataclass(frozen=True, slots=True)
class CountAnswers:
    """What a staged count read back: the users counted so far, and fields of the run."""

    processed: int
    expected: str
    state: str
    created_at: str
    trigger: str
    ended: bool = False  # this count ended the run: RunStore.ended follows

    @property
    def from_webhook(self) -> bool:
        return bool(self.trigger) and Trigger.parse(self.trigger).from_webhook


@dataclass(frozen=True, slots=True)
class Counted:
    """One user's outcome in a run, and its plan entry in a dry run."""

    user_id: str
    action: str
    plan_entry: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StagedCount:
    """Where a staged count's answers sit among its pipeline's."""

    first: int

    def answers(self, results: Sequence[Any]) -> CountAnswers:
        processed, expected, state, created_at, trigger, ended = results[self.first]
        return CountAnswers(
            int(processed),
            as_text(expected),
            as_text(state),
            as_text(created_at),
            as_text(trigger),
            ended=bool(int(ended)),
        )


@dataclass(frozen=True, slots=True)
class Retentions:
    """How long a run's records live: a webhook's, and every other."""

    runs: int
    webhook_runs: int


def stage_outcomes(
    pipe: Pipeline, tenant: str, run_id: str, counted: Sequence[Counted], kept: Retentions
) -> StagedCount:
    """Note these users' outcomes in the run and settle its state, in `pipe`."""
    run_key = keys.run(tenant, run_id)
    users_key = keys.run_users(tenant, run_id)
    hour = webhook_hours.slot(tenant, run_id, kept.runs)
    pairs = [part for c in counted for part in (c.user_id, c.action)]
    first = len(pipe)
    settings = (utcnow_iso(), kept.runs, kept.webhook_runs, hour.prefix, hour.expire_at, run_id)
    script_keys = (users_key, run_key, hour.key, keys.webhook_runs(tenant))
    pipe.eval(_COUNT_AND_SETTLE, 4, *script_keys, *map(str, settings), *pairs)
    return StagedCount(first)

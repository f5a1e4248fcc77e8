"""Starting runs: a full run joins the one under way, never one that has just ended."""

from __future__ import annotations

from app.service.resources import Resources
from app.service.runs import FULL_RUN, start_run
from app.store import keys
from app.store.run_model import RunState, Trigger, TriggerKind
from tests.factories import TENANT

API = Trigger(TriggerKind.API)


async def test_a_full_run_asked_while_one_runs_joins_it(res: Resources) -> None:
    running = await start_run(res, TENANT, FULL_RUN, trigger=API)
    assert await start_run(res, TENANT, FULL_RUN, trigger=API) == running


async def test_a_full_run_asked_as_the_last_one_ends_starts_afresh(res: Resources) -> None:
    """A finish records the run's end a moment before it frees the tenant; a client that saw
    the end and asks again in that moment gets a run of its own."""
    ended = await start_run(res, TENANT, FULL_RUN, trigger=API)
    await res.runs.set_state(TENANT, ended, RunState.DONE)  # the lock not yet released
    assert await res.redis.get(keys.active_full_run(TENANT)) == ended.encode()

    fresh = await start_run(res, TENANT, FULL_RUN, trigger=API)
    assert fresh != ended
    assert await res.redis.get(keys.active_full_run(TENANT)) == fresh.encode()
    run = await res.runs.get(TENANT, fresh)
    assert run is not None
    assert run.state is RunState.QUEUED

"""Held runs (service.md, "Sync triggers"): which held run an operator may confirm or dismiss,
and how each held run ends -- confirmed (by a run and a token), dismissed, or superseded by a
later full run.

A confirmation approves exactly the list the operator saw: the confirming run suspends those
that are still due and weighs any other suspension against the guard as usual.
"""

from __future__ import annotations

import logging

import orjson

from app.service.errors import BadTrigger, RunConflict, UnknownRun
from app.service.resources import Resources
from app.store.run_model import Resolution, Run, RunMode, RunState, utcnow_iso

log = logging.getLogger(__name__)


async def held_run_id(res: Resources, tenant: str) -> str | None:
    """The run the tenant's safety guard holds now, if any."""
    return (await res.records.notes(tenant)).get("held_run") or None


async def refuse_unnamed_confirmation(res: Resources, tenant: str) -> BadTrigger:
    """`confirm_suspensions: true`: an operator confirms a list, so the id of the run that
    showed it is required; the answer names the run held now."""
    held = await held_run_id(res, tenant)
    if held is None:
        return BadTrigger("`confirm_suspensions` takes the id of a held run; no run is held now")
    return BadTrigger(f"`confirm_suspensions` takes the id of the held run to confirm: {held}")


async def resolvable(res: Resources, tenant: str, run_id: str) -> Run:
    """The held run an operator may confirm or dismiss; else why not, naming the run."""
    run = await res.runs.get(tenant, run_id)
    if run is None:
        raise UnknownRun(f"no run {run_id} (or it expired)")
    if run.state is not RunState.HELD or run.mode is not RunMode.FULL or run.dry_run:
        kind = "a dry run" if run.dry_run else f"{run.state.value}, not held"
        raise RunConflict(f"run {run_id} is {kind}: it holds no suspension")
    if run.resolution is Resolution.SUPERSEDED:
        raise RunConflict(
            f"run {run_id} was superseded by run {run.resolved_by_run}, which weighed the"
            " suspensions again: confirm the run held now, if any"
        )
    if run.resolution is Resolution.CONFIRMED:
        raise RunConflict(f"run {run_id} was confirmed already, by run {run.resolved_by_run}")
    if run.resolution is Resolution.DISMISSED:
        raise RunConflict(f"run {run_id} was dismissed")
    return run


async def claim_confirmation(
    res: Resources, tenant: str, held_id: str, *, by_run: str, operator: str
) -> None:
    """Mark the held run confirmed by `by_run`; a race lost to another resolution is a 409."""
    if not await res.runs.resolve(
        tenant, held_id, Resolution.CONFIRMED, by=operator, by_run=by_run
    ):
        await resolvable(res, tenant, held_id)  # raises, naming who resolved it first
        raise RunConflict(f"run {held_id} was resolved meanwhile")
    log.info("tenant=%s run=%s confirmed by run %s (%s)", tenant, held_id, by_run, operator)


async def dismiss(res: Resources, tenant: str, run_id: str, *, operator: str) -> str:
    """Drop a held run: nobody on its list is suspended; the next run weighs them again."""
    await resolvable(res, tenant, run_id)
    if not await res.runs.resolve(tenant, run_id, Resolution.DISMISSED, by=operator):
        await resolvable(res, tenant, run_id)
        raise RunConflict(f"run {run_id} was resolved meanwhile")
    if await held_run_id(res, tenant) == run_id:
        await res.records.note(tenant, held_run="", held_users="")
    log.info("tenant=%s run=%s dismissed (%s)", tenant, run_id, operator)
    return run_id


async def approved_users(res: Resources, tenant: str, confirms: str | None) -> set[str]:
    """The suspensions a confirming run may make past the guard: its held run's list."""
    return set(await res.runs.held_users(tenant, confirms)) if confirms else set()


async def note_full_run_end(
    res: Resources, tenant: str, run_id: str, held: list[str] | None
) -> None:
    """A real full run ended (held when `held` is a list): the run held before it, if
    unresolved, is superseded -- this run weighed the tenant again -- and the status says
    what holds now."""
    previous = await held_run_id(res, tenant)
    if previous is not None and previous != run_id:
        await res.runs.resolve(tenant, previous, Resolution.SUPERSEDED, by_run=run_id)
    if held is None:
        await res.records.note(tenant, last_full_run=utcnow_iso(), held_run="", held_users="")
    else:
        await res.records.note(tenant, held_run=run_id, held_users=orjson.dumps(held).decode())

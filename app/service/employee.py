"""Sync one employee: look up both sides, decide with the pure core, write the difference."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Any, Protocol

from redis.asyncio.client import Pipeline

from app.clients.errors import ElevoRateLimited, ElevoUnavailable, UpstreamError
from app.clients.lucca import LuccaBatch
from app.core import scim
from app.core.decision import Action, Decision, decide
from app.core.errors import InvalidLuccaUser
from app.core.lucca_user import LuccaUser
from app.core.profile import ElevoProfile
from app.core.rules import Standing, desired_attributes, standing_of
from app.service.blocks import wait_for_credential
from app.service.context import TenantContext
from app.service.employee_profile import EmployeeProfiles
from app.service.fresher import NOTICED_AFTER_READ
from app.service.outcomes import (
    DecisionBatch,
    Outcome,
    Stage,
    Summary,
    error_outcome,
)
from app.service.pacing import honour_rate_limit, note_unanswered, wait_for_elevo
from app.service.resources import Resources
from app.service.skip_field import HELD_REASON
from app.service.waiting import Reason, park
from app.store.budget import ElevoPause
from app.store.links import ProfileLinks
from app.store.run_counts import CountAnswers
from app.store.skip_field import SkipFieldMemory
from app.store.snapshot import Snapshot

log = logging.getLogger(__name__)

MAX_MANAGER_DEPTH = 20
MAX_STALE_RETRIES = 3  # reads of Elevo; a decision on the kept copy counts as none


class Fetch(Protocol):
    """Lucca's answer for a user; `fresh`: not from the shared read cache (already looked)."""

    def __call__(self, user_id: str, *, fresh: bool = False) -> Awaitable[LuccaBatch]: ...


class EmployeeSync:
    """Syncs employees of one tenant with the Lucca data a `fetch` gives for them.

    One instance serves one job or one reconciliation slice. Managers without a profile
    are synced first; a cycle leaves the field empty and asks for a follow-up sync.
    """

    def __init__(
        self,
        tenant_ctx: TenantContext,
        res: Resources,
        fetch: Fetch,
        *,
        run_id: str | None = None,
        dry_run: bool = False,
        defer_suspensions: bool = False,
        fetch_managers: bool = True,
        snapshot: Snapshot | None = None,
        user_name_owners: Mapping[str, str] | None = None,
        skip_field_decided: bool = False,
        read_mark: int | None = None,
        batch_records: bool = False,
    ) -> None:
        self._ctx = tenant_ctx
        self._res = res
        self._links = ProfileLinks(res.redis, tenant_ctx.tenant)
        self._fetch = fetch
        self._run_id = run_id
        self._dry_run = dry_run
        self._today = tenant_ctx.today()
        # A reconciliation gathers its suspensions to weigh them against the safety guard.
        self._defer_suspensions = defer_suspensions
        # False in a reconciliation: a missing manager makes a follow-up, not a Lucca read.
        self._fetch_managers = fetch_managers
        # One round trip per job for its records; a page's wait for `flush_records`, except
        # those of a write (recorded at once, as the write is).
        self._records = DecisionBatch(res.records, res.runs, tenant_ctx.tenant, dry_run=dry_run)
        self._batch_records = batch_records
        self._profiles = EmployeeProfiles(
            tenant_ctx,
            res,
            self._links,
            snapshot=snapshot,
            run_id=run_id,
            dry_run=dry_run,
            read_mark=read_mark,
            on_linked=self._resync_waiting,
            stage_with=self._records.also,
        )
        self._page: LuccaBatch | None = None  # the batch a reconciliation step works on
        # Lucca users sharing a userName: who may create it (casefolded name -> Lucca id), so
        # that a plan and the run that follows it agree whatever the order of the writes.
        self._owners = user_name_owners or {}
        self._done: dict[str, Outcome] = {}
        # Users to sync again once their manager has a profile: user -> that manager.
        self._follow_ups: dict[str, str] = {}
        self._deferred: dict[str, Decision] = {}  # suspensions waiting for the guard
        self._contract_ends: dict[str, date] = {}  # future last days, to re-check on time
        self._skip_memory = SkipFieldMemory(res.redis, tenant_ctx.tenant)
        # True when a complete listing of this run showed the skip field on someone: an absent
        # field is then unticked even for an employee last seen excluded.
        self._skip_field_decided = skip_field_decided
        self._last_seen_excluded: dict[str, bool] = {}  # read from the memory, per user
        # The tenant's Elevo pause as a live sync read it with the employee's state (`_look_up`),
        # for its first write; a write after a stale one reads it again.
        self._pause_read: dict[str, tuple[float, str]] = {}
        # The users whose state `keep_look_up` took, and what the shared read cache held for
        # each then (None: nothing usable, read Lucca).
        self._first_reads: dict[str, LuccaBatch | None] = {}

    @property
    def tenant(self) -> str:
        return self._ctx.tenant

    @property
    def run_id(self) -> str | None:
        return self._run_id

    async def preload_skip_memory(self, user_ids: Iterable[str]) -> None:
        """Read in one round trip who of these users was last seen excluded (a page of 1000)."""
        ids = [uid for uid in user_ids if uid not in self._last_seen_excluded]
        excluded = await self._skip_memory.excluded_among(ids)
        self._last_seen_excluded.update({uid: uid in excluded for uid in ids})

    async def preload_unsure_creates(self) -> None:
        """Before a slice's syncs start: read by the first, the others wait holding a slot."""
        await self._profiles.read_unsure()

    def record(self, decision: Decision, *, error: str) -> None:
        """A decision made outside `sync` (a user left for later), written with the next
        records."""
        self._records.add(decision, run_id=self._run_id, written=False, error=error)

    async def flush_records(self) -> None:
        """Write the records waiting; reports of a user who recovered are synced again."""
        for user_id in sorted(await self._records.flush()):
            done = self._done.get(user_id)
            if done is None or done.decision.action is not Action.HELD:
                # Its reports kept their manager while its own sync failed: sync them again.
                await self._resync_waiting(user_id)

    def counted(self, run_id: str) -> CountAnswers | None:
        """The run's fields as its last count in this sync read them (None: not counted)."""
        return self._records.counted.get(run_id)

    def summary(self) -> Summary:
        """What the syncs so far left to do (a copy: later syncs do not change it)."""
        return Summary(
            follow_ups=dict(self._follow_ups),
            deferred=dict(self._deferred),
            contract_ends=dict(self._contract_ends),
        )

    async def sync(
        self,
        user_id: str,
        batch: LuccaBatch | None = None,
        *,
        visiting: frozenset[str] = frozenset(),
        also: Stage | None = None,
    ) -> Outcome:
        """Sync one employee and record the outcome; `also`: another store's write, sent with
        that record (not when the sync raises)."""
        if user_id in self._done:
            return self._done[user_id]
        try:
            if batch is None:
                if not visiting and user_id not in self._first_reads:
                    await self._look_up(user_id)
                # Not even Lucca's budget is spent while the tenant's Elevo is paused.
                await wait_for_elevo(self._res, self.tenant, self._pause_read.get(user_id))
                batch = await self._read_lucca(user_id)
            elif self._page is None:
                self._page = batch
            outcome = await self._sync_from(user_id, batch, visiting | {user_id})
        except UpstreamError as exc:
            if isinstance(exc, ElevoRateLimited):  # every writer of the tenant waits
                await honour_rate_limit(self._res, self._ctx, exc)
            elif isinstance(exc, ElevoUnavailable):  # a stalled Elevo is not piled upon
                paused = await note_unanswered(self._res, self._ctx, exc)
                if paused is not None:
                    raise paused from exc
            if exc.retryable:
                raise  # the job retries later, with backoff
            # Permanent: a refused credential makes the employee wait for it (parked); anything
            # else (a 400 from Elevo, ...) is its error, tried again by the next reconciliation.
            waits = await wait_for_credential(
                self._res, self.tenant, user_id, exc, run_id=self._run_id, dry_run=self._dry_run
            )
            failed = error_outcome(user_id, f"{type(exc).__name__}: {exc}")
            outcome = failed if waits is None else Outcome(waits, written=False)
        self._done[user_id] = outcome
        if outcome.decision.user in self._deferred:
            return outcome  # recorded once the guard has weighed the run
        # A manager synced for a report's sake is in a reconciliation's run, not in a run of
        # named users: counted there, it would end that run before its own users are synced.
        counted = not visiting or not self._fetch_managers
        if also is not None:
            self._records.also(also)
        self._records.add(
            outcome.decision,
            run_id=self._run_id if counted else None,
            written=outcome.written,
            error=outcome.error,
        )
        if outcome.written or not self._batch_records:
            await self.flush_records()
        return outcome

    def stage_look_up(self, pipe: Pipeline, user_id: str) -> None:
        """What a live sync reads of the employee before its Lucca read, staged in the
        caller's round trip (a job sends it with its user lock): its skip field memory, its
        link and profile copy, a creation that may have been lost, and the tenant's Elevo
        pause (read again before its write). `keep_look_up` takes the answers."""
        ElevoPause.stage_remaining(pipe, self.tenant)
        self._skip_memory.stage_excluded(pipe, user_id)
        self._res.batcher.stage_cached(pipe, self.tenant, user_id)
        self._profiles.stage_lookup(pipe, user_id)

    def keep_look_up(self, user_id: str, answers: Sequence[Any]) -> None:
        pause_ttl, pause_why, excluded, cache_read, cache_gen, *lookup = answers
        self._first_reads[user_id] = self._res.batcher.cached(user_id, (cache_read, cache_gen))
        self._pause_read[user_id] = ElevoPause.read_remaining(pause_ttl, pause_why)
        self._last_seen_excluded.setdefault(user_id, bool(excluded))
        self._profiles.keep_lookup(user_id, lookup)

    async def _look_up(self, user_id: str) -> None:
        pipe = self._res.redis.pipeline(transaction=False)
        self.stage_look_up(pipe, user_id)
        self.keep_look_up(user_id, await pipe.execute())

    async def _read_lucca(self, user_id: str) -> LuccaBatch:
        if user_id not in self._first_reads:
            return await self._fetch(user_id)
        looked = self._first_reads[user_id]
        return looked if looked is not None else await self._fetch(user_id, fresh=True)

    async def _sync_from(
        self, user_id: str, batch: LuccaBatch, visiting: frozenset[str]
    ) -> Outcome:
        if user_id in batch.invalid:
            return error_outcome(user_id, batch.invalid[user_id])
        user = batch.users.get(user_id)
        try:
            standing = standing_of(user, skip_field=self._ctx.config.skip_field, today=self._today)
        except InvalidLuccaUser as exc:
            return error_outcome(user_id, str(exc))
        held = user is not None and await self._held_by_skip_field(user_id, standing, batch)
        if standing is Standing.ACTIVE and user is not None and user.contract_end is not None:
            self._contract_ends[user_id] = user.contract_end
        reads = 0
        while reads < MAX_STALE_RETRIES:
            profile = await self._profiles.find(user_id, user)
            on_copy = self._profiles.from_copy(user_id)
            reads += not on_copy
            if held:
                return _held(user_id, profile)
            try:
                desired = await self._desired(user, standing, profile, visiting)
            except InvalidLuccaUser as exc:
                return error_outcome(user_id, str(exc))
            decision = self._claimed(decide(user_id, standing, desired, profile), desired)
            deferred = decision.action is Action.SUSPEND and self._defer_suspensions
            if on_copy and (deferred or self._dry_run or not decision.writes):
                self._profiles.read_afresh(user_id)  # only a conditional write trusts a copy
                continue
            if deferred:
                self._deferred[user_id] = decision
                return Outcome(decision, written=False)
            if self._dry_run or not decision.writes:
                conflict = decision.action is Action.CONFLICT
                return Outcome(decision, written=False, error=decision.reason if conflict else None)
            await wait_for_elevo(self._res, self.tenant, self._pause_read.pop(user_id, None))
            written = await self._profiles.write(decision, desired, profile)
            if written is not None:
                return written
        return error_outcome(user_id, "the Elevo profile kept changing during the sync; will retry")

    async def _held_by_skip_field(
        self, user_id: str, standing: Standing, batch: LuccaBatch
    ) -> bool:
        """Absent means unticked, except for an employee last seen excluded (sync-rules.md).

        Keeps the memory of who was last seen excluded up to date along the way.
        """
        was_excluded = self._last_seen_excluded.get(user_id)
        if was_excluded is None:
            was_excluded = bool(await self._skip_memory.excluded_among([user_id]))
            self._last_seen_excluded[user_id] = was_excluded
        if standing is Standing.EXCLUDED:
            if not was_excluded and not self._dry_run:
                await self._skip_memory.note(excluded=[user_id])
                self._last_seen_excluded[user_id] = True
            return False
        if not was_excluded:
            return False
        if user_id in batch.skip_field_shown or self._skip_field_decided:
            if not self._dry_run:  # unticked now, or absent while others show it: unticked
                await self._skip_memory.note(unticked=[user_id])
                self._last_seen_excluded[user_id] = False
            return False
        if not self._dry_run and self._page is None:  # a full run's listing decides its own
            await park(self._res, self.tenant, [user_id], Reason.SKIP_FIELD, run_id=self._run_id)
        return True

    def _claimed(self, decision: Decision, desired: Mapping[str, Any] | None) -> Decision:
        if decision.action is not Action.CREATE or desired is None:
            return decision
        owner = self._owners.get(str(desired[scim.USER_NAME]).casefold(), decision.user)
        if owner == decision.user:
            return decision
        reason = f"userName {desired[scim.USER_NAME]!r} is also Lucca user {owner}'s"
        return replace(decision, action=Action.CONFLICT, reason=reason, diff={})

    async def _desired(
        self,
        user: LuccaUser | None,
        standing: Standing,
        profile: ElevoProfile | None,
        visiting: frozenset[str],
    ) -> dict[str, Any] | None:
        # Only a profile that is (or will be) written from Lucca needs one: an excluded
        # employee, or one who left with no profile, is never written from these fields.
        written = standing is Standing.ACTIVE or (standing is Standing.LEFT and profile is not None)
        if user is None or not written:
            return None
        manager = await self._manager_profile_id(user, visiting, profile)
        if manager is None and user.manager_id is not None and not self._dry_run:
            # Comes back when the manager gets a profile (a hire, a rehire, an un-exclusion).
            # A slice stages it with its records (a reconciliation keeps a follow-up meanwhile).
            stage = self._records.also if self._batch_records else None
            await self._links.await_manager(user.manager_id, user.id, stage_with=stage)
        return desired_attributes(
            user,
            custom_fields=self._ctx.config.custom_fields,
            manager_profile_id=manager,
            active=standing is Standing.ACTIVE,
        )

    async def _manager_profile_id(
        self, user: LuccaUser, visiting: frozenset[str], profile: ElevoProfile | None
    ) -> str | None:
        manager_id = user.manager_id
        if manager_id is None:
            return None
        if manager_id in self._done:  # handled earlier in this run: created, or has none
            return await self._manager_of(user, self._done[manager_id], profile)
        found = await self._profiles.profile_id(manager_id, ask_elevo=True)
        if found is not None:
            return found
        cycle = manager_id in visiting or len(visiting) > MAX_MANAGER_DEPTH
        if cycle or not self._fetch_managers:
            # A cycle: this user goes first without a manager, and comes back once it exists.
            self._follow_ups[user.id] = manager_id
            return None
        page = self._page
        in_page = page is not None and (manager_id in page.users or manager_id in page.invalid)
        outcome = await self.sync(manager_id, page if in_page else None, visiting=visiting)
        return await self._manager_of(user, outcome, profile)

    async def _manager_of(
        self, user: LuccaUser, manager: Outcome, profile: ElevoProfile | None
    ) -> str | None:
        """The manager's profile, from its sync's outcome. A sync that failed (a value that is
        no boolean, an Elevo 400), waits, or left its write to a fresher one (a notice came
        after this run's read: its own job may have just created the profile) says nothing of
        who manages this user: the report keeps the manager's known profile, else the value
        Elevo has, and syncs again once the manager does (keys.awaiting_manager)."""
        decision = manager.decision
        says_nothing = decision.action in (Action.ERROR, Action.HELD) or (
            decision.action is Action.SKIPPED and decision.reason == NOTICED_AFTER_READ
        )
        if decision.profile_id is not None or not says_nothing:
            return decision.profile_id
        if not self._dry_run:
            await self._links.await_manager(decision.user, user.id)
        known = await self._profiles.profile_id(decision.user, ask_elevo=False)
        if known is not None:
            return known
        current = profile.attributes.get(scim.MANAGER) if profile is not None else None
        return None if current is None else str(current)

    async def _resync_waiting(self, user_id: str) -> None:
        """Reports waiting for this user's profile (keys.awaiting_manager) are synced again."""
        waiting = await self._links.waiting_for(user_id)
        self._follow_ups.update({member: user_id for member in waiting})

    async def follow_ups_kept(self) -> None:
        """The follow-ups are queued (or kept by the run): the reports wait no more."""
        if not self._dry_run:
            await self._links.stop_waiting(self._follow_ups)


def _held(user_id: str, profile: ElevoProfile | None) -> Outcome:
    """Held until a complete listing decides (sync-rules.md, "Absent means unticked")."""
    # The profile stays the employee's, so that its reports keep their manager.
    own = profile.id if profile is not None and profile.external_id == user_id else None
    return Outcome(Decision(user_id, Action.HELD, HELD_REASON, profile_id=own), written=False)

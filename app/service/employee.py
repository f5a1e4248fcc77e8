"""Sync one employee: look up both sides, decide with the pure core, write the difference."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from functools import partial
from typing import Any

from app.clients.errors import (
    ElevoConflict,
    ElevoNotFound,
    ElevoPreconditionFailed,
    ElevoRateLimited,
    UpstreamError,
)
from app.clients.lucca import LuccaBatch
from app.core import scim
from app.core.decision import Action, Decision, decide
from app.core.errors import InvalidLuccaUser
from app.core.lucca_user import LuccaUser
from app.core.patch import create_resource, patch_operations
from app.core.profile import ElevoProfile
from app.core.rules import Standing, desired_attributes, standing_of
from app.service.blocks import wait_for_credential
from app.service.context import TenantContext
from app.service.duplicates import create_marked, keep_oldest
from app.service.fresher import NOTICED_AFTER_READ, write_unless_noticed
from app.service.outcomes import record_decision
from app.service.pacing import honour_rate_limit, wait_for_elevo
from app.service.resources import Resources
from app.service.skip_field import HELD_REASON
from app.service.waiting import Reason, park
from app.store.links import ProfileLinks
from app.store.skip_field import SkipFieldMemory
from app.store.snapshot import Snapshot

log = logging.getLogger(__name__)

MAX_MANAGER_DEPTH = 20
MAX_STALE_RETRIES = 3

Fetch = Callable[[str], Awaitable[LuccaBatch]]


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Decision
    written: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    """What the syncs of one EmployeeSync left for its caller to do.

    `follow_ups`: users to sync again once their manager has a profile (user -> manager);
    `deferred`: suspensions waiting for the safety guard; `contract_ends`: future last days,
    to re-check on time.
    """

    follow_ups: Mapping[str, str]
    deferred: Mapping[str, Decision]
    contract_ends: Mapping[str, date]


class _Stale(Exception):
    """The profile changed or vanished between read and write: read again."""


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
        self._known = dict(snapshot.profiles) if snapshot else {}
        self._profile_ids = dict(snapshot.profile_ids) if snapshot else {}
        self._complete = snapshot is not None and snapshot.complete
        self._read_afresh: set[str] = set()  # users whose snapshot proved stale
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
        self._unsure_creates: set[str] | None = None  # read once, when first needed
        # A reconciliation's notice mark, noted before it read Lucca (app/service/fresher.py).
        self._read_mark = read_mark

    @property
    def tenant(self) -> str:
        return self._ctx.tenant

    async def preload_skip_memory(self, user_ids: Iterable[str]) -> None:
        """Read in one round trip who of these users was last seen excluded (a page of 1000)."""
        ids = [uid for uid in user_ids if uid not in self._last_seen_excluded]
        excluded = await self._skip_memory.excluded_among(ids)
        self._last_seen_excluded.update({uid: uid in excluded for uid in ids})

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
    ) -> Outcome:
        if user_id in self._done:
            return self._done[user_id]
        try:
            if batch is None:
                batch = await self._fetch(user_id)
            elif self._page is None:
                self._page = batch
            outcome = await self._sync_from(user_id, batch, visiting | {user_id})
        except UpstreamError as exc:
            if isinstance(exc, ElevoRateLimited):  # every writer of the tenant waits
                await honour_rate_limit(self._res, self._ctx, exc)
            if exc.retryable:
                raise  # the job retries later, with backoff
            # Permanent: a refused credential makes the employee wait for it (parked); anything
            # else (a 400 from Elevo, ...) is its error, tried again by the next reconciliation.
            waits = await wait_for_credential(
                self._res, self.tenant, user_id, exc, run_id=self._run_id, dry_run=self._dry_run
            )
            failed = _error(user_id, f"{type(exc).__name__}: {exc}")
            outcome = failed if waits is None else Outcome(waits, written=False)
        self._done[user_id] = outcome
        if outcome.decision.user in self._deferred:
            return outcome  # recorded once the guard has weighed the run
        # A manager synced for a report's sake is in a reconciliation's run, not in a run of
        # named users: counted there, it would end that run before its own users are synced.
        counted = not visiting or not self._fetch_managers
        recovered = await record_decision(
            self._res.records,
            self._res.runs,
            self._ctx.tenant,
            outcome.decision,
            run_id=self._run_id if counted else None,
            written=outcome.written,
            error=outcome.error,
            dry_run=self._dry_run,
        )
        if recovered and outcome.decision.action is not Action.HELD:
            # Its reports kept their manager while its own sync failed: sync them again now.
            waiting = await self._links.take_waiting(user_id)
            self._follow_ups.update({member: user_id for member in waiting})
        return outcome

    async def _sync_from(
        self, user_id: str, batch: LuccaBatch, visiting: frozenset[str]
    ) -> Outcome:
        if user_id in batch.invalid:
            return _error(user_id, batch.invalid[user_id])
        user = batch.users.get(user_id)
        try:
            standing = standing_of(user, skip_field=self._ctx.config.skip_field, today=self._today)
        except InvalidLuccaUser as exc:
            return _error(user_id, str(exc))
        held = user is not None and await self._held_by_skip_field(user_id, standing, batch)
        if standing is Standing.ACTIVE and user is not None and user.contract_end is not None:
            self._contract_ends[user_id] = user.contract_end
        for _ in range(MAX_STALE_RETRIES):
            profile = await self._find_profile(user_id, user)
            if held:
                return _held(user_id, profile)
            try:
                desired = await self._desired(user, standing, profile, visiting)
            except InvalidLuccaUser as exc:
                return _error(user_id, str(exc))
            decision = self._claimed(decide(user_id, standing, desired, profile), desired)
            if decision.action is Action.SUSPEND and self._defer_suspensions:
                self._deferred[user_id] = decision
                return Outcome(decision, written=False)
            if self._dry_run or not decision.writes:
                conflict = decision.action is Action.CONFLICT
                return Outcome(decision, written=False, error=decision.reason if conflict else None)
            try:
                await wait_for_elevo(self._res, self._ctx.tenant)
                return await self._write(decision, desired, profile)
            except _Stale:
                self._read_afresh.add(user_id)
                continue
        return _error(user_id, "the Elevo profile kept changing during the sync; will retry")

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
            await self._links.await_manager(user.manager_id, user.id)
        return desired_attributes(
            user,
            custom_fields=self._ctx.config.custom_fields,
            manager_profile_id=manager,
            active=standing is Standing.ACTIVE,
        )

    async def _find_profile(self, user_id: str, user: LuccaUser | None) -> ElevoProfile | None:
        # A snapshot serves once: after a stale write the profile is read afresh.
        known = self._known.pop(user_id, None)
        if user_id in await self._unsure():
            # A creation lost its answer: it may have landed since the snapshot or the link
            # was read, even as a second profile. Elevo is asked, whatever they say.
            profile = await self._by_external_id(user_id)
        elif known is not None:
            return known
        elif self._complete and user_id not in self._read_afresh:
            return None
        else:
            profile = await self._linked_profile(user_id)
        if profile is None and user is not None and user.user_name:
            profile = await self._ctx.elevo.find_by_user_name(user.user_name)
        if profile is not None and profile.external_id == user_id:
            await self._remember(user_id, profile.id)
        return profile

    async def _linked_profile(self, user_id: str) -> ElevoProfile | None:
        cached = await self._links.profile_id(user_id)
        if cached is not None:
            profile = await self._ctx.elevo.get(cached)
            if profile is not None and profile.external_id == user_id:
                return profile
            if not self._dry_run:  # a plan moves no sync state
                await self._links.forget(user_id)
        return await self._by_external_id(user_id)

    async def _by_external_id(self, user_id: str) -> ElevoProfile | None:
        try:
            return await self._ctx.elevo.find_by_external_id(user_id)
        except ElevoConflict:  # two profiles: the older stays, a later one is retired
            return await keep_oldest(
                self._res, self._ctx, user_id, run_id=self._run_id, dry_run=self._dry_run
            )

    async def _unsure(self) -> set[str]:  # read once per instance
        if self._unsure_creates is None:
            self._unsure_creates = await self._links.unsure_creates()
        return self._unsure_creates

    async def _manager_profile_id(
        self, user: LuccaUser, visiting: frozenset[str], profile: ElevoProfile | None
    ) -> str | None:
        manager_id = user.manager_id
        if manager_id is None:
            return None
        if manager_id in self._done:  # handled earlier in this run: created, or has none
            return await self._manager_of(user, self._done[manager_id], profile)
        if manager_id in self._profile_ids:
            return self._profile_ids[manager_id]
        found = await self._manager_from_elevo(manager_id, ask_elevo=not self._complete)
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
        no boolean, an Elevo 400) or waits says nothing of who manages this user: the report
        keeps the manager's known profile, else the value Elevo has, and syncs again once the
        manager does (keys.awaiting_manager)."""
        decision = manager.decision
        if decision.profile_id is not None or decision.action not in (Action.ERROR, Action.HELD):
            return decision.profile_id
        if not self._dry_run:
            await self._links.await_manager(decision.user, user.id)
        known = self._profile_ids.get(decision.user) or await self._links.profile_id(decision.user)
        if known is not None:
            return known
        current = profile.attributes.get(scim.MANAGER) if profile is not None else None
        return None if current is None else str(current)

    async def _manager_from_elevo(self, manager_id: str, *, ask_elevo: bool) -> str | None:
        """The id map first (it knows the profiles this run created); Elevo if allowed."""
        cached = await self._links.profile_id(manager_id)
        if cached is not None:
            return cached
        if not ask_elevo:
            return None
        found = await self._by_external_id(manager_id)
        if found is None:
            return None
        await self._remember(manager_id, found.id)
        return found.id

    async def _remember(self, user_id: str, profile_id: str) -> None:
        if not self._dry_run:  # a plan moves no sync state
            await self._links.remember(user_id, profile_id)

    async def _linked(self, user_id: str, profile_id: str) -> None:
        """A profile is now this user's: remember it, and resync who waited for it."""
        await self._remember(user_id, profile_id)
        waiting = await self._links.take_waiting(user_id)
        self._follow_ups.update({member: user_id for member in waiting})

    async def _write(
        self, decision: Decision, desired: Mapping[str, Any] | None, profile: ElevoProfile | None
    ) -> Outcome:
        if self._read_mark is None:
            return await self._apply(decision, desired, profile)
        apply = partial(self._apply, decision, desired, profile)
        written = await write_unless_noticed(
            self._res, self._ctx.tenant, decision.user, self._read_mark, apply
        )
        skipped = replace(decision, action=Action.SKIPPED, reason=NOTICED_AFTER_READ, diff={})
        return written or Outcome(skipped, written=False)

    async def _apply(
        self, decision: Decision, desired: Mapping[str, Any] | None, profile: ElevoProfile | None
    ) -> Outcome:
        elevo = self._ctx.elevo
        if decision.action is Action.CREATE:
            assert desired is not None
            try:
                created = await create_marked(
                    self._links, elevo, decision.user, create_resource(desired)
                )
            except ElevoConflict as exc:
                holder = await elevo.find_by_user_name(str(desired[scim.USER_NAME]))
                if holder is not None and holder.external_id == decision.user:
                    raise _Stale from exc  # created meanwhile by another job: decide again
                return _conflict(decision, exc)
            await self._linked(decision.user, created.id)
            return Outcome(replace(decision, profile_id=created.id), written=True)
        assert profile is not None
        operations, rewrites_list = patch_operations(decision.diff, desired, profile)
        try:
            await elevo.patch(
                profile.id, operations, version=profile.version if rewrites_list else None
            )
        except (ElevoPreconditionFailed, ElevoNotFound) as exc:
            await self._links.forget(decision.user)
            raise _Stale from exc
        except ElevoConflict as exc:
            return _conflict(decision, exc)
        if decision.action is Action.ADOPT:
            await self._linked(decision.user, profile.id)
        return Outcome(decision, written=True)


def _error(user_id: str, message: str) -> Outcome:
    return Outcome(Decision(user_id, Action.ERROR, message), written=False, error=message)


def _held(user_id: str, profile: ElevoProfile | None) -> Outcome:
    # The profile stays the employee's, so that its reports keep their manager.
    own = profile.id if profile is not None and profile.external_id == user_id else None
    return Outcome(Decision(user_id, Action.HELD, HELD_REASON, profile_id=own), written=False)


def _conflict(decision: Decision, exc: ElevoConflict) -> Outcome:
    message = f"Elevo refused the {decision.action.value}: {exc}"
    linked = decision.action is not Action.CREATE and decision.action is not Action.ADOPT
    conflict = replace(
        decision,
        action=Action.CONFLICT,
        reason=message,
        profile_id=decision.profile_id if linked else None,
    )
    return Outcome(conflict, written=False, error=message)

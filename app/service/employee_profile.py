"""The Elevo side of one employee's sync: find the employee's profile, write a decision to it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from redis.asyncio.client import Pipeline

from app.clients.errors import ElevoConflict, ElevoNotFound, ElevoPreconditionFailed
from app.core import scim
from app.core.decision import Action, Decision
from app.core.lucca_user import LuccaUser
from app.core.patch import create_resource, patch_operations, patched
from app.core.profile import ElevoProfile
from app.service.context import TenantContext
from app.service.duplicates import create_marked, keep_oldest
from app.service.fresher import NOTICED_AFTER_READ, write_unless_noticed
from app.service.outcomes import Outcome, Stage
from app.service.resources import Resources
from app.store.links import ProfileLinks
from app.store.snapshot import Snapshot

# Called with a user once a profile became theirs (created or adopted).
OnLinked = Callable[[str], Awaitable[None]]
# The id map's profile id for a user, and the copy of that profile (app/store/links.py).
Linked = tuple[str | None, ElevoProfile | None]
# Sends another store's write with the employee's records (one round trip).
StageWith = Callable[[Stage], None]


class _Stale(Exception):
    """The profile changed or vanished between read and write: read again."""


class EmployeeProfiles:
    """Finds the Elevo profiles of one tenant's employees and writes decisions to them.

    Serves one EmployeeSync. A reconciliation's snapshot answers first, once per user; then
    the copy of the profile kept with its version (app/store/links.py), only to be written
    with `If-Match`: a decision that writes nothing is confirmed by a read; then the id map,
    and Elevo. A write that finds its profile changed is not applied, and that user's
    profile is read afresh.
    """

    def __init__(
        self,
        tenant_ctx: TenantContext,
        res: Resources,
        links: ProfileLinks,
        *,
        snapshot: Snapshot | None,
        run_id: str | None,
        dry_run: bool,
        read_mark: int | None,
        on_linked: OnLinked,
        stage_with: StageWith,
    ) -> None:
        self._ctx = tenant_ctx
        self._res = res
        self._links = links
        self._run_id = run_id
        self._dry_run = dry_run
        self._known = dict(snapshot.profiles) if snapshot else {}
        self._profile_ids = dict(snapshot.profile_ids) if snapshot else {}
        self._unlinked = set(snapshot.unlinked) if snapshot else set()
        self._complete = snapshot is not None and snapshot.complete
        self._read_afresh: set[str] = set()  # users whose snapshot proved stale
        self._unsure_creates: set[str] | None = None  # read once, when first needed
        self._unsure_read = asyncio.Lock()  # by the first of a slice's concurrent syncs
        # A reconciliation's notice mark, noted before it read Lucca (app/service/fresher.py).
        self._read_mark = read_mark
        self._on_linked = on_linked
        self._stage_with = stage_with
        self._from_copy: set[str] = set()  # users whose profile at hand is the kept copy
        # What a live sync read with its other state (`stage_lookup`): link, copy, unsure.
        self._looked_up: dict[str, tuple[Linked, bool]] = {}

    def stage_lookup(self, pipe: Pipeline, user_id: str) -> None:
        """The user's link, the copy of its profile and whether a creation of it may have
        been lost, in a pipeline: a live sync reads them with its other state in one round
        trip. `keep_lookup` takes the three answers."""
        self._links.stage_linked(pipe, user_id)
        self._links.stage_unsure(pipe, user_id)

    def keep_lookup(self, user_id: str, answers: Sequence[Any]) -> None:
        linked = ProfileLinks.read_linked(answers[:2])
        self._looked_up[user_id] = (linked, ProfileLinks.read_unsure(answers[2]))

    def from_copy(self, user_id: str) -> bool:
        """Whether the profile `find` gave is the kept copy, not read from Elevo."""
        return user_id in self._from_copy

    def read_afresh(self, user_id: str) -> None:
        """The next `find` reads Elevo (a decision made on the copy that writes nothing)."""
        self._from_copy.discard(user_id)
        self._read_afresh.add(user_id)

    async def find(self, user_id: str, user: LuccaUser | None) -> ElevoProfile | None:
        # A snapshot serves once: after a stale write the profile is read afresh.
        self._from_copy.discard(user_id)
        known = self._known.pop(user_id, None)
        linked = False  # found through the id map: no need to remember the link again
        looked_up, unsure = self._looked_up.pop(user_id, (None, None))  # serves once
        if unsure is None:
            unsure = user_id in await self._unsure()
        if unsure:
            # A creation lost its answer: it may have landed since the snapshot or the link
            # was read, even as a second profile. Elevo is asked, whatever they say.
            profile = await self._by_external_id(user_id)
        elif known is not None:
            return known
        elif self._complete and user_id not in self._read_afresh:
            return None
        else:
            profile, linked = await self._linked_profile(user_id, looked_up)
        if profile is None and user is not None and user.user_name:
            profile = await self._ctx.elevo.find_by_user_name(user.user_name)
        if profile is not None and profile.external_id == user_id:
            if unsure and not self._dry_run:
                # The creation landed unanswered: whoever waits for it is told now, as an
                # answered one would have (the reports of a manager, app/service/employee.py).
                await self._linked(user_id, profile.id)
            elif not linked:
                await self._remember(user_id, profile.id)
        return profile

    async def profile_id(self, user_id: str, *, ask_elevo: bool) -> str | None:
        """The snapshot's id first, then the id map's (it knows the profiles this run
        created); Elevo's when asked and the snapshot does not know every profile."""
        if user_id in self._profile_ids:
            return self._profile_ids[user_id]
        # Unlinked when the snapshot was read: the id map is not asked again for each report.
        cached = None if user_id in self._unlinked else await self._links.profile_id(user_id)
        if cached is not None:
            return cached
        if not ask_elevo or self._complete:
            return None
        found = await self._by_external_id(user_id)
        if found is None:
            return None
        await self._remember(user_id, found.id)
        return found.id

    async def write(
        self, decision: Decision, desired: Mapping[str, Any] | None, profile: ElevoProfile | None
    ) -> Outcome | None:
        """The decision written, refused or left to a fresher write; None when the profile
        changed or vanished since it was read: find it again and decide again."""
        try:
            if self._read_mark is None:
                return await self._apply(decision, desired, profile)
            apply = partial(self._apply, decision, desired, profile)
            written = await write_unless_noticed(
                self._res, self._ctx.tenant, decision.user, self._read_mark, apply
            )
        except _Stale:
            self._read_afresh.add(decision.user)
            return None
        skipped = replace(decision, action=Action.SKIPPED, reason=NOTICED_AFTER_READ, diff={})
        return written or Outcome(skipped, written=False)

    async def _linked_profile(
        self, user_id: str, looked_up: Linked | None
    ) -> tuple[ElevoProfile | None, bool]:
        """The profile the id map links to the user (its kept copy, else read), else the one
        Elevo links by externalId; and whether it came through the id map."""
        cached, copy = looked_up or await self._links.linked(user_id)
        if copy is not None and not self._dry_run and user_id not in self._read_afresh:
            self._from_copy.add(user_id)
            return copy, True
        if cached is not None:
            profile = await self._ctx.elevo.get(cached)
            if profile is not None and profile.external_id == user_id:
                self._keep_copy(user_id, profile)
                return profile, True
            if not self._dry_run:  # a plan moves no sync state
                await self._links.forget(user_id)
        return await self._by_external_id(user_id), False

    def _keep_copy(self, user_id: str, profile: ElevoProfile | None) -> None:
        if not self._dry_run:  # a plan moves no sync state
            self._stage_with(partial(self._links.stage_copy, user_id=user_id, profile=profile))

    async def _by_external_id(self, user_id: str) -> ElevoProfile | None:
        try:
            return await self._ctx.elevo.find_by_external_id(user_id)
        except ElevoConflict:  # two profiles: the older stays, a later one is retired
            return await keep_oldest(
                self._res, self._ctx, user_id, run_id=self._run_id, dry_run=self._dry_run
            )

    async def read_unsure(self) -> None:
        """Read now the creations that may have been lost (once per instance)."""
        await self._unsure()

    async def _unsure(self) -> set[str]:  # read once per instance
        if self._unsure_creates is not None:  # no lock to take for each of a page's users
            return self._unsure_creates
        async with self._unsure_read:
            if self._unsure_creates is None:
                self._unsure_creates = await self._links.unsure_creates()
        return self._unsure_creates

    async def _remember(self, user_id: str, profile_id: str) -> None:
        self._unlinked.discard(user_id)
        if not self._dry_run:  # a plan moves no sync state
            await self._links.remember(user_id, profile_id)

    async def _linked(self, user_id: str, profile_id: str) -> None:
        """A profile is now this user's: remember it, and tell who waits for it."""
        await self._remember(user_id, profile_id)
        await self._on_linked(user_id)

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
            self._keep_copy(decision.user, created)
            return Outcome(replace(decision, profile_id=created.id), written=True)
        assert profile is not None
        operations, _ = patch_operations(decision.diff, desired, profile)
        try:
            # Always conditional when the version is known: the copy kept after the write is
            # then exactly what Elevo holds at the new version.
            version = await elevo.patch(profile.id, operations, version=profile.version)
        except ElevoPreconditionFailed as exc:
            if self.from_copy(decision.user):  # the link holds; only the copy is stale
                await self._links.forget_copy(decision.user)
            else:
                await self._links.forget(decision.user)
            raise _Stale from exc
        except ElevoNotFound as exc:
            await self._links.forget(decision.user)
            raise _Stale from exc
        except ElevoConflict as exc:
            return _conflict(decision, exc)
        after = None
        if profile.version is not None and version is not None:
            after = patched(profile, decision.diff, desired, version)
        self._keep_copy(decision.user, after)
        if decision.action is Action.ADOPT:
            await self._linked(decision.user, profile.id)
        return Outcome(decision, written=True)


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

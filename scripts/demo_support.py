"""The machinery under `scripts/demo.py`: printing, and typed views of the Lucca simulator and
of Elevo (SCIM) for the demo's story to use. The demo's processes: `demo_stack.py`.
"""

from __future__ import annotations

import contextlib
import random
import sys
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.clients.elevo import ElevoClient
from app.core import scim
from app.core.errors import InvalidLuccaUser
from app.core.lucca_user import LuccaUser, parse_user
from app.core.profile import ElevoProfile
from app.core.rules import Standing, standing_of
from stack.checks import all_profiles
from stack.ports import Probe

TENANT = "acme"

Check = Callable[[ElevoProfile], bool]


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why."""


# -- printing ---------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * int(q) // 100) - 1)]


class Out:
    """The demo's voice: phase headers, one line per step, a transient progress line."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stdout.isatty()
        self._transient = False

    def header(self, title: str) -> None:
        self.line(f"\n== {title}")

    def line(self, text: str, *, always: bool = False) -> None:
        if always or not self.quiet:
            self._clear()
            print(text, flush=True)

    def progress(self, text: str) -> None:
        """A line the next one replaces (on a terminal only)."""
        if self.tty and not self.quiet:
            sys.stdout.write(f"\r\033[K{text}")
            sys.stdout.flush()
            self._transient = True

    def _clear(self) -> None:
        if self._transient:
            sys.stdout.write("\r\033[K")
            self._transient = False


# -- Lucca and Elevo, as the story sees them ----------------------------------------------------


def counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{action} {n}" for action, n in sorted(counts.items(), key=lambda i: -i[1]))


def field_is(path: str, value: str) -> Check:
    def holds(profile: ElevoProfile) -> bool:
        return bool(profile.attributes.get(path) == value)

    return holds


def managed_active(profile: ElevoProfile) -> bool:
    return profile.managed and profile.active


def suspended(profile: ElevoProfile) -> bool:
    return profile.managed and not profile.active


def released(profile: ElevoProfile) -> bool:
    return not profile.managed and profile.active


@dataclass
class Directory:
    """A Lucca dump read through the sync's own rules, to pick whom the story changes."""

    dump: dict[str, Any]
    skip_field: str
    managed: set[str]  # Lucca ids with an active profile the sync manages
    taken: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.today = date.fromisoformat(self.dump["today"])
        self.items = {str(item["id"]): item for item in self.dump["users"]}
        self.departments = {str(d["id"]): str(d["name"]) for d in self.dump["departments"]}
        self.users: dict[str, LuccaUser] = {}
        self.standing: dict[str, Standing] = {}
        self.reports: dict[str, list[str]] = {}
        for uid, item in self.items.items():
            with contextlib.suppress(InvalidLuccaUser):
                user = self.users[uid] = parse_user(item)
                self.standing[uid] = standing_of(user, skip_field=self.skip_field, today=self.today)
                if user.manager_id:
                    self.reports.setdefault(user.manager_id, []).append(uid)
        names = [(u.user_name or "").casefold() for u in self.users.values()]
        self._shared = {name for name in names if names.count(name) > 1}

    def name(self, uid: str) -> str:
        user = self.users[uid]
        return f"{user.first_name} {user.last_name}"

    def unique_name(self, uid: str) -> bool:
        return (
            bool(self.users[uid].user_name)
            and (self.users[uid].user_name or "").casefold() not in self._shared
        )

    def synced(self, uid: str) -> bool:
        """Active, started, with a managed profile: a plain employee to change."""
        start = self.users[uid].contract_start
        started = start is not None and start <= self.today
        return self.standing.get(uid) is Standing.ACTIVE and uid in self.managed and started

    def leaf(self, uid: str) -> bool:
        """A synced employee who manages nobody and shares no mailbox."""
        return self.synced(uid) and not self.reports.get(uid) and self.unique_name(uid)

    def excluded_active(self, uid: str) -> bool:
        end = self.users[uid].contract_end
        excluded = self.standing.get(uid) is Standing.EXCLUDED
        return excluded and (end is None or end >= self.today) and self.unique_name(uid)

    def former(self, uid: str) -> bool:
        left = self.standing.get(uid) is Standing.LEFT
        return left and uid not in self.managed and self.unique_name(uid)

    def pick(self, rng: random.Random, want: Callable[[str], bool], fallback: str = "") -> str:
        """A user no other change took, for whom `want` holds; else `fallback`."""
        found = [u for u in sorted(self.users, key=int) if u not in self.taken and want(u)]
        if not found and not fallback:
            raise DemoError("the company is too small for the demo's story: try a larger --size")
        uid = rng.choice(found) if found else fallback
        self.taken.add(uid)
        return uid

    def members(self, dept_id: str) -> list[str]:
        return [uid for uid, u in self.users.items() if u.department_id == dept_id]

    def fresh_mail(self, first: str, last: str) -> str:
        taken = {(u.mail or "").casefold() for u in self.users.values()}
        local = f"{_slug(first)}.{_slug(last)}"
        candidates = (f"{local}{n if n > 1 else ''}@{TENANT}.example" for n in range(1, 100))
        return next(m for m in candidates if m not in taken)


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in ascii_text.lower() if c.isalnum() or c == "-")


class ElevoWatch:
    """Probes that hold once Elevo shows something: what the demo times."""

    def __init__(self, elevo: ElevoClient, directory: Directory) -> None:
        self.elevo, self.dir = elevo, directory

    def shows(self, uid: str, want: Check) -> Probe:
        async def probe() -> bool:
            found = await self.elevo.find_by_external_id(uid)
            return found is not None and want(found)

        return probe

    def reports_to(self, uid: str, manager: str) -> Probe:
        """Managed, active, and its manager is the manager's own profile."""

        async def probe() -> bool:
            found = await self.elevo.find_by_external_id(uid)
            boss = await self.elevo.find_by_external_id(manager)
            if found is None or boss is None:
                return False
            return managed_active(found) and found.attributes[scim.MANAGER] == boss.id

        return probe

    def department_shows(self, dept_id: str, name: str) -> Probe:
        """Every managed profile of the department's members shows its new name."""

        async def probe() -> bool:
            members = set(self.dir.members(dept_id))
            profiles = [p for p in await all_profiles(self.elevo) if p.external_id in members]
            held = [p for p in profiles if p.managed]
            return bool(held) and all(p.attributes[scim.DEPARTMENT] == name for p in held)

        return probe

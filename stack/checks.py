"""What Elevo holds against what the sync rules say Lucca implies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

from app.clients.elevo import ElevoClient
from app.core.profile import ElevoProfile, profile_from_scim
from simulators.consistency import Report, check
from stack.lucca_control import LuccaControl

SCIM_PAGE = 1000


async def all_profiles(elevo: ElevoClient) -> list[ElevoProfile]:
    """Every profile of the tenant, page by page."""
    found: list[ElevoProfile] = []
    while True:
        page = await elevo.list_page(start_index=len(found) + 1, count=1000)
        found.extend(page.profiles)
        if not page.profiles or len(found) >= page.total:
            return found


async def raw_users(http: httpx.AsyncClient, scim_url: str, token: str) -> list[dict[str, Any]]:
    """Every SCIM User of a tenant as Elevo returns it: the consistency checker reads these
    itself, so that the sync's own SCIM parsing is not what judges the sync."""
    found: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/scim+json"}
    while True:
        params = {"startIndex": len(found) + 1, "count": SCIM_PAGE}
        # Generous: a page of 1,000 from a busy scim2-server may take a while.
        response = await http.get(f"{scim_url}/Users", params=params, headers=headers, timeout=120)
        response.raise_for_status()
        page = response.json()
        resources = page.get("Resources") or []
        found.extend(resources)
        if not resources or len(found) >= int(page.get("totalResults", 0)):
            return found


@dataclass(frozen=True)
class ScimAccess:
    """Where a tenant's profiles are, for reading them raw."""

    http: httpx.AsyncClient
    scim_url: str
    token: str

    async def users(self) -> list[dict[str, Any]]:
        return await raw_users(self.http, self.scim_url, self.token)


@dataclass
class Consistency:
    report: Report
    profiles: list[ElevoProfile]
    dump: dict[str, Any]

    @property
    def today(self) -> date:
        return date.fromisoformat(self.dump["today"])


async def consistency(
    lucca: LuccaControl,
    elevo: ScimAccess,
    *,
    skip_field: str,
    custom_fields: Mapping[str, str],
) -> Consistency:
    """simulators.consistency over the whole Lucca dump and every Elevo profile, both raw."""
    dump = await lucca.dump()
    users = await elevo.users()
    today = date.fromisoformat(dump["today"])
    report = check(
        dump["users"], users, skip_field=skip_field, custom_fields=custom_fields, today=today
    )
    return Consistency(report, [profile_from_scim(user) for user in users], dump)

"""What Elevo holds against what the sync rules say Lucca implies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.clients.elevo import ElevoClient
from app.core.profile import ElevoProfile
from simulators.consistency import Report, check
from stack.lucca_control import LuccaControl


async def all_profiles(elevo: ElevoClient) -> list[ElevoProfile]:
    """Every profile of the tenant, page by page."""
    found: list[ElevoProfile] = []
    while True:
        page = await elevo.list_page(start_index=len(found) + 1, count=1000)
        found.extend(page.profiles)
        if not page.profiles or len(found) >= page.total:
            return found


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
    elevo: ElevoClient,
    *,
    skip_field: str,
    custom_fields: Mapping[str, str],
) -> Consistency:
    """simulators.consistency over the whole Lucca dump and every Elevo profile."""
    dump = await lucca.dump()
    profiles = await all_profiles(elevo)
    today = date.fromisoformat(dump["today"])
    report = check(
        dump["users"], profiles, skip_field=skip_field, custom_fields=custom_fields, today=today
    )
    return Consistency(report, profiles, dump)

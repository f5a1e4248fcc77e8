"""The companies a simulator serves, by subdomain."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from simulators.lucca.clock import Clock, utc_now
from simulators.lucca.endpoints import WebhookHub
from simulators.lucca.faults import DEFAULT_RATE_LIMIT

if TYPE_CHECKING:
    from simulators.lucca.company import Company


class Registry:
    """Companies by subdomain. `rate_limit` and `clock` are the defaults for new companies."""

    def __init__(self, *, rate_limit: int | None = DEFAULT_RATE_LIMIT, clock: Clock = utc_now):
        self.rate_limit = rate_limit
        self.clock = clock
        self._companies: dict[str, Company] = {}
        # OAuth clients, webhook endpoints and deliveries of Lucca's current API.
        self.hub = WebhookHub()

    def add(self, company: Company) -> Company:
        """Register (or replace) the company serving `company.subdomain`."""
        self._companies[company.subdomain] = company
        return company

    def get(self, subdomain: str) -> Company | None:
        return self._companies.get(subdomain)

    def __getitem__(self, subdomain: str) -> Company:
        return self._companies[subdomain]

    def remove(self, subdomain: str) -> bool:
        return self._companies.pop(subdomain, None) is not None

    def __contains__(self, subdomain: object) -> bool:
        return subdomain in self._companies

    def __iter__(self) -> Iterator[Company]:
        return iter(list(self._companies.values()))

    def __len__(self) -> int:
        return len(self._companies)

"""The Lucca simulator's control API for one company (simulators/lucca/control.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from simulators.lucca.webhooks import Event
from stack.ports import StackError


class MutationRefused(StackError):
    """The simulator refused a change (400 or 404: an invalid change, an unknown user)."""


class LuccaControl:
    """Creates the company, changes it as HR would, sets faults, reads counters and dumps."""

    def __init__(self, http: httpx.AsyncClient, lucca_url: str, subdomain: str) -> None:
        self._http = http
        self.base = f"{lucca_url}/_control/{subdomain}"

    async def create(self, api_key: str, size: int, seed: int = 1) -> None:
        """A generated company of `size` people, without the simulator's rate limit."""
        body = {"api_key": api_key, "size": size, "seed": seed, "rate_limit": None}
        response = await self._http.put(self.base, json=body, timeout=600)
        response.raise_for_status()

    async def mutate(self, op: str, **arguments: Any) -> list[Event]:
        """Apply one HR change; the webhook events Lucca would send for it."""
        response = await self._http.post(f"{self.base}/mutations", json={"op": op, **arguments})
        if response.status_code in (400, 404):
            raise MutationRefused(f"the simulator refused {op}: {response.text}")
        response.raise_for_status()
        events: list[Event] = response.json()["events"]
        return events

    async def dump(self) -> dict[str, Any]:
        """Every user and department, and the simulator's today."""
        return await self._json("GET", "users")

    async def counters(self, *, reset: bool = False) -> dict[str, Any]:
        """Requests served so far, by kind and status (reset: and start counting again)."""
        body = await self._json("DELETE" if reset else "GET", "counters")
        body.pop("requests", None)  # the request log itself: not a counter
        return body

    async def request_log(self) -> list[dict[str, Any]]:
        """The requests the company received (the last 10,000), each with its arrival `at` in
        the simulator's monotonic seconds."""
        log: list[dict[str, Any]] = (await self._json("GET", "counters"))["requests"]
        return log

    async def faults(self, body: Mapping[str, Any] | None = None) -> None:
        """Set the faults (error_rate, force, ...); None clears them all."""
        if body is None:
            response = await self._http.delete(f"{self.base}/faults")
        else:
            response = await self._http.put(f"{self.base}/faults", json=dict(body))
        response.raise_for_status()

    async def _json(self, method: str, resource: str) -> dict[str, Any]:
        response = await self._http.request(method, f"{self.base}/{resource}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

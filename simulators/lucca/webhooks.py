"""Lucca webhook events (API 2024-11-01) and a sender that delivers them like Lucca does.

Builders take a v3 user dict (the simulator's storage) and return the event Lucca would POST:
`{id, type: "event", url, apiVersion, topic, occurredAt, source, data, previousAttributes}`,
`previousAttributes` only on `*.updated`. Ids inside events are strings.

`WebhookSender` signs each attempt with a fresh `Lucca-Timestamp` and
`Lucca-Signature = base64(HMAC-SHA256(secret, timestamp + "." + body))`, retries non-2xx
answers, and stops for good on 404/410 (Lucca suspends the endpoint).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import httpx
import orjson

# Re-exported: callers built events with these before clock.py existed.
from simulators.lucca.clock import Clock as Clock
from simulators.lucca.clock import utc_now as utc_now

API_VERSION = "2024-11-01"
Event = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]

_PLURALS = {
    "employee": "employees",
    "employment": "employments",
    "job-position": "job-positions",
    "department": "departments",
    "legal-entity": "legal-entities",
    "business-establishment": "business-establishments",
    "employee-extension": "employee-extensions",
    "webhook-endpoint": "webhook-endpoints",
    "leave": "leaves",
}


def source_url(subdomain: str) -> str:
    return f"https://{subdomain}.ilucca.net"


class ResourceIds(NamedTuple):
    """The v5 ids of a user's current employment and job position."""

    employment: int
    job_position: int


def employee_status(user: dict[str, Any], today: date) -> str:
    """`active|upcoming|deactivated` as Lucca computes it from the contract dates."""
    start = user.get("dtContractStart")
    end = user.get("dtContractEnd")
    day = today.isoformat()
    if end is not None and end[:10] < day:
        return "deactivated"
    if start is not None and start[:10] > day:
        return "upcoming"
    return "active"


def ref(source: str, kind: str, ident: object) -> dict[str, str]:
    return {"id": str(ident), "type": kind, "url": f"{source}/lucca-api/{_PLURALS[kind]}/{ident}"}


def _ref_id(v3_ref: dict[str, Any] | None) -> int | None:
    return None if v3_ref is None else int(v3_ref["id"])


def employee_data(user: dict[str, Any], source: str, today: date, ids: ResourceIds) -> Event:
    return {
        **ref(source, "employee", user["id"]),
        "givenName": user["firstName"],
        "familyName": user["lastName"],
        "email": user.get("mail"),
        "employeeNumber": user.get("employeeNumber"),
        "remoteId": None,
        "status": employee_status(user, today),
        "applicableEmployment": ref(source, "employment", ids.employment),
        "applicableJobPosition": ref(source, "job-position", ids.job_position),
    }


def _date_part(v3_date: str | None) -> str | None:
    return None if v3_date is None else v3_date[:10]


def employment_data(user: dict[str, Any], source: str, today: date, ids: ResourceIds) -> Event:
    end = _date_part(user.get("dtContractEnd"))
    return {
        **ref(source, "employment", ids.employment),
        "employee": ref(source, "employee", user["id"]),
        "legalEntity": ref(source, "legal-entity", _ref_id(user.get("legalEntity"))),
        "status": employee_status(user, today),
        "start": {"date": _date_part(user["dtContractStart"])},
        "end": None if end is None else {"date": end},
        "template": {"id": "1", "type": "employment-template"},
    }


def v5_manager(user: dict[str, Any], source: str) -> dict[str, str] | None:
    """v5 has no self-manager: a root (null or itself in v3) has a null manager."""
    manager_id = _ref_id(user.get("manager"))
    if manager_id is None or manager_id == user["id"]:
        return None
    return ref(source, "employee", manager_id)


def job_position_data(
    user: dict[str, Any],
    source: str,
    today: date,
    ids: ResourceIds,
    updated: Sequence[str] = (),
) -> Event:
    return {
        **ref(source, "job-position", ids.job_position),
        "employment": ref(source, "employment", ids.employment),
        "employee": ref(source, "employee", user["id"]),
        "status": employee_status(user, today),
        "startsOn": _date_part(user["dtContractStart"]),
        "endsOn": _date_part(user.get("dtContractEnd")),
        "businessEstablishment": ref(
            source, "business-establishment", _ref_id(user.get("legalEntity"))
        ),
        "jobTitle": user.get("jobTitle"),
        "manager": v5_manager(user, source),
        "department": ref(source, "department", _ref_id(user.get("department"))),
        "updatedAttributes": list(updated),
    }


def unwrap_extension(stored: Any) -> Any:
    """The plain value of an `extendedData` entry: `{id, value}`, a list of them, or bare."""
    if isinstance(stored, dict) and "value" in stored:
        return stored["value"]
    if isinstance(stored, list):
        return [unwrap_extension(item) for item in stored]
    return stored


def extension_data(user_id: int, code: str, stored: Any, source: str) -> Event:
    value_id = stored.get("id") if isinstance(stored, dict) else None
    ident = value_id if value_id is not None else f"{user_id}-{code}"
    return {
        **ref(source, "employee-extension", ident),
        "employee": ref(source, "employee", user_id),
        "extensionDefinition": {"id": code, "type": "extension-definition"},
        "value": unwrap_extension(stored),
    }


def department_data(dept_id: int, name: str) -> Event:
    return {"id": str(dept_id), "type": "department", "name": name}


def make_event(
    topic: str,
    data: Event,
    *,
    subdomain: str,
    occurred_at: datetime,
    previous: dict[str, Any] | None = None,
    event_id: str | None = None,
) -> Event:
    """Wrap `data` in the event envelope; `previous` is kept only on `*.updated`."""
    source = source_url(subdomain)
    ident = event_id or str(uuid.uuid4())
    event: Event = {
        "id": ident,
        "type": "event",
        "url": f"{source}/lucca-api/events/{ident}",
        "apiVersion": API_VERSION,
        "topic": topic,
        "occurredAt": occurred_at.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
        "source": source,
        "data": data,
    }
    if topic.endswith(".updated"):
        event["previousAttributes"] = previous or {}
    return event


def confirmation_event(subdomain: str, *, endpoint_id: str = "1", clock: Clock = utc_now) -> Event:
    data = ref(source_url(subdomain), "webhook-endpoint", endpoint_id)
    return make_event("confirmation", data, subdomain=subdomain, occurred_at=clock())


def ping_event(subdomain: str, *, endpoint_id: str = "1", clock: Clock = utc_now) -> Event:
    data = ref(source_url(subdomain), "webhook-endpoint", endpoint_id)
    return make_event("ping", data, subdomain=subdomain, occurred_at=clock())


def leave_created_event(subdomain: str, *, employee_id: int, clock: Clock = utc_now) -> Event:
    """A topic the sync must acknowledge and ignore."""
    source = source_url(subdomain)
    now = clock()
    data = {
        **ref(source, "leave", f"{employee_id}-{now.date().isoformat()}"),
        "employee": ref(source, "employee", employee_id),
        "date": now.date().isoformat(),
    }
    return make_event("leave.created", data, subdomain=subdomain, occurred_at=now)


def lucca_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`Lucca-Signature`: base64 of HMAC-SHA256 over `timestamp + "." + body`."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


@dataclass(frozen=True, slots=True)
class Attempt:
    timestamp: str
    status: int | None  # None: the request did not get an answer


@dataclass(slots=True)
class Delivery:
    event_id: str
    topic: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return bool(self.attempts) and _is_success(self.attempts[-1].status)


def _is_success(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


# Lucca retries over about a day; the simulator keeps the count but shortens the waits.
DEFAULT_RETRY_DELAYS = (1.0, 5.0, 30.0, 60.0)


class WebhookSender:
    """POSTs signed events to one endpoint, retrying like Lucca.

    `retry_delays[i]` is the wait before attempt i+2, so its length + 1 is the attempt count.
    After a 404 or 410 the endpoint is `suspended` and nothing more is sent.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        secret: str,
        *,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = utc_now,
    ) -> None:
        self._client = client
        self.url = url
        self.secret = secret
        self.retry_delays = tuple(retry_delays)
        self._sleep = sleep
        self._clock = clock
        self.suspended = False
        self.deliveries: list[Delivery] = []

    async def send(
        self,
        event: Event,
        *,
        secret: str | None = None,
        skew: timedelta = timedelta(0),
    ) -> Delivery:
        """Deliver one event; `secret` signs with another key, `skew` shifts the timestamp."""
        delivery = Delivery(event_id=str(event.get("id")), topic=str(event.get("topic")))
        self.deliveries.append(delivery)
        body = orjson.dumps(event)
        for attempt in range(len(self.retry_delays) + 1):
            if self.suspended:
                break
            if attempt:
                await self._sleep(self.retry_delays[attempt - 1])
            status, timestamp = await self._post(body, secret or self.secret, skew)
            delivery.attempts.append(Attempt(timestamp, status))
            if status in (404, 410):
                self.suspended = True
            if _is_success(status):
                break
        return delivery

    async def send_all(
        self,
        events: Iterable[Event],
        *,
        duplicates: int = 0,
        shuffle: bool = False,
        seed: int = 0,
        secret: str | None = None,
        skew: timedelta = timedelta(0),
    ) -> list[Delivery]:
        """Deliver each event `1 + duplicates` times, in a seeded random order if `shuffle`."""
        batch = [event for event in events for _ in range(1 + duplicates)]
        if shuffle:
            random.Random(seed).shuffle(batch)
        return [await self.send(event, secret=secret, skew=skew) for event in batch]

    async def activate(self, value: str = "activation-token", *, param: str = "echo") -> bool:
        """Lucca's activation GET: the endpoint must answer 200 with `value` as the body."""
        try:
            response = await self._client.get(self.url, params={param: value})
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and response.text == value

    async def _post(self, body: bytes, secret: str, skew: timedelta) -> tuple[int | None, str]:
        timestamp = lucca_timestamp(self._clock() + skew)
        headers = {
            "Content-Type": "application/json",
            "Lucca-Timestamp": timestamp,
            "Lucca-Signature": sign(secret, timestamp, body),
        }
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError:
            return None, timestamp
        return response.status_code, timestamp

"""A run's types: its state, mode and trigger, the record a new run writes, and the typed view
of a stored one (app/store/runs.py is the one writer). The field names and encodings are a
stored format.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    HELD = "held"

    @property
    def final(self) -> bool:
        return self in {RunState.DONE, RunState.FAILED, RunState.HELD}


class Resolution(StrEnum):
    """How a held run ended: an operator confirmed or dismissed it, or a later run weighed
    the tenant again (held again, or done)."""

    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"
    SUPERSEDED = "superseded"


class RunMode(StrEnum):
    FULL = "full"  # a reconciliation of every user
    CHANGES = "changes"  # a poll of what Lucca changed since the last one
    USERS = "users"  # a list of users (an API call, a webhook)
    DEPARTMENT = "department"  # the members of a renamed department
    RELEASE = "release"  # a disconnection: every managed profile's syncSource removed


class TriggerKind(StrEnum):
    API = "api"
    NIGHTLY = "nightly"
    POLL = "poll"
    KEY_REPLACED = "key-replaced"  # a new Lucca key after Lucca refused the old one
    BENCH = "bench"  # bench/worker_throughput.py
    WEBHOOK = "webhook"
    WEBHOOK_MALFORMED = "webhook:malformed"  # an unreadable event: a poll asks Lucca instead
    UNBLOCKED = "unblocked"  # a tenant-level reason cleared: what waited for it (waiting.py)
    RESUMED = "resumed"  # a paused tenant resumed: what waited, and the runs asked meanwhile
    SKIP_FIELD_CHECK = "skip-field-check"  # a complete listing for an employee held on one read
    WEBHOOK_COALESCED = "webhook-coalesced"  # events beyond the tenant's ingest rate
    LUCCA_REPLAY = "lucca-replay"  # the events of an outage, listed by Lucca (issue 15)


@dataclass(frozen=True, slots=True)
class Trigger:
    """What started a run; a webhook's trigger carries its topic."""

    kind: TriggerKind
    topic: str | None = None

    @classmethod
    def webhook(cls, topic: str) -> Trigger:
        return cls(TriggerKind.WEBHOOK, topic)

    @classmethod
    def malformed_webhook(cls, topic: str) -> Trigger:
        return cls(TriggerKind.WEBHOOK_MALFORMED, topic)

    @classmethod
    def parse(cls, text: str) -> Trigger:
        for kind in (TriggerKind.WEBHOOK_MALFORMED, TriggerKind.WEBHOOK):
            if text.startswith(f"{kind.value}:"):
                return cls(kind, text[len(kind.value) + 1 :])
        return cls(TriggerKind(text))

    @property
    def from_webhook(self) -> bool:
        return self.kind in {TriggerKind.WEBHOOK, TriggerKind.WEBHOOK_MALFORMED}

    @staticmethod
    def lua_from_webhook(variable: str) -> str:
        """`from_webhook` of a stored trigger, in a script (`variable`: a Lua string): its
        kind `webhook` or `webhook:malformed`, with or without a topic."""
        return f"({variable} == 'webhook' or string.sub({variable}, 1, 8) == 'webhook:')"

    def __str__(self) -> str:
        return self.kind.value if self.topic is None else f"{self.kind.value}:{self.topic}"


# A run id's leading time, UTC to the second: draft_run writes it, readers take it back.
RUN_ID_TIME = "%Y%m%dT%H%M%S"


def iso_ms(moment: datetime) -> str:
    """A time as run records and history entries hold it: ISO 8601 to the millisecond, `Z`
    for UTC."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utcnow_iso() -> str:
    return iso_ms(datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run record not yet written: its id sorts by creation time."""

    id: str
    created_at: str
    fields: Mapping[str, str | int]


def draft_run(
    *,
    mode: RunMode,
    trigger: Trigger,
    dry_run: bool = False,
    expected: int | None = None,
    confirms: str | None = None,
    reason: str | None = None,
) -> NewRun:
    run_id = datetime.now(UTC).strftime(RUN_ID_TIME) + "-" + secrets.token_hex(3)
    created_at = utcnow_iso()
    fields: dict[str, str | int] = {
        "id": run_id,
        "mode": mode.value,
        "trigger": str(trigger),
        "state": RunState.QUEUED.value,
        "created_at": created_at,
    }
    if dry_run:  # absent: a real run (32 bytes of every webhook's run, kept 3 days)
        fields["dry_run"] = 1
    if expected is not None:
        fields["expected"] = expected
    if confirms is not None:
        fields["confirms"] = confirms  # the held run whose list this run may suspend
    # Stored JSON-encoded, as the first version stored every "extra" field.
    if reason is not None:
        fields["reason"] = orjson.dumps(reason).decode()
    return NewRun(id=run_id, created_at=created_at, fields=fields)


@dataclass(frozen=True, slots=True)
class Run:
    """A run record's fields, typed."""

    id: str
    mode: RunMode
    trigger: Trigger
    state: RunState
    dry_run: bool
    created_at: str
    expected: int | None = None
    confirms: str | None = None  # a confirmation: the held run it approves
    lucca_users: int = 0  # counted by a reconciliation's pages
    lucca_unreadable: int = 0  # Lucca items without a usable id, in a reconciliation's pages
    active_managed: int = 0  # active managed profiles in a reconciliation's snapshot
    skip_field_shown: int = 0  # a reconciliation's listed users showing the skip field
    resolution: Resolution | None = None  # a held run's end
    resolved_by_run: str | None = None  # the run that confirmed or superseded it

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> Run:
        expected = fields.get("expected")
        resolution = fields.get("resolution")
        return cls(
            id=fields["id"],
            mode=RunMode(fields["mode"]),
            trigger=Trigger.parse(fields["trigger"]),
            state=RunState(fields["state"]),
            dry_run=fields.get("dry_run") == "1",
            created_at=fields.get("created_at", ""),
            expected=int(expected) if expected else None,
            confirms=fields.get("confirms") or None,
            lucca_users=int(fields.get("lucca_users") or 0),
            lucca_unreadable=int(fields.get("lucca_unreadable") or 0),
            active_managed=int(fields.get("active_managed") or 0),
            skip_field_shown=int(fields.get("skip_field_shown") or 0),
            resolution=Resolution(resolution) if resolution else None,
            resolved_by_run=fields.get("resolved_by_run") or None,
        )


@dataclass(frozen=True, slots=True)
class RunReport:
    """A run with its outcomes, as GET /sync/{tenant}/runs/{id} shows it."""

    run: Run
    fields: Mapping[str, str]  # the stored hash, in its order, as text
    counts: Mapping[str, int]
    processed: int
    errors: Mapping[str, str]
    plan: Sequence[Any] | None  # a dry run's plan entries, by Lucca id

    def document(self, *, with_plan: bool = True) -> dict[str, Any]:
        document: dict[str, Any] = {"counts": dict(self.counts), "processed": self.processed}
        for key, value in self.fields.items():
            if key in {"expected", "dry_run", "cursor"}:
                document[key] = int(value)
            elif value[:1] in {"[", "{"}:
                document[key] = orjson.loads(value)
            else:
                document[key] = value
        document["dry_run"] = bool(document.get("dry_run"))
        document["errors"] = dict(self.errors)
        if with_plan and self.plan is not None:
            document["plan"] = list(self.plan)
        return document

"""The API's answers as msgspec Structs: the OpenAPI document is generated from them.

Each describes the JSON a route answers today, key for key. A field that an answer may leave out
defaults to UNSET (encoded as absent); one always present but possibly null is `X | None`.
Answers that carry stored records (`Run`, `PlanEntry`) may hold further keys.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from app.core.decision import Action
from app.core.events import NoticeKind
from app.schemas.tenant import TenantName

RunState = Literal["queued", "running", "done", "failed", "held"]
# How a held run ended: confirmed (by a run and a token), dismissed, or superseded by a later
# full run that weighed the suspensions again.
Resolution = Literal["confirmed", "dismissed", "superseded"]
WEBHOOK_OUTCOMES: Final = (*(kind.value for kind in NoticeKind), "duplicate")


class ErrorBody(Struct):
    """Every refusal: a machine code and a sentence that never carries a secret."""

    error: str
    detail: str


class Health(Struct):
    status: Literal["ok", "ready", "redis unreachable"]


class TenantList(Struct):
    tenants: list[TenantName]


class LuccaEvent(Struct):
    """A Lucca webhook event ({id, topic, data, ...}); any JSON object is accepted once signed:
    an unexpected `data` is recorded and triggers a changes poll."""


class WebhookAccepted(Struct, kw_only=True):
    status: Annotated[str, Meta(extra_json_schema={"enum": list(WEBHOOK_OUTCOMES)})]
    run: str | UnsetType | None = UNSET
    reason: str | UnsetType | None = UNSET


class RunStarted(Struct):
    run: str


class Change(Struct):
    old: Any
    new: Any


class PlanEntry(Struct, kw_only=True):
    """One decision about one user (a dry run's plan, or a history entry)."""

    user: str
    action: Action
    reason: str | UnsetType | None = UNSET
    diff: dict[str, Change] | UnsetType = UNSET
    at: str | UnsetType = UNSET
    run: str | UnsetType | None = UNSET
    written: bool | UnsetType = UNSET
    dry_run: bool | UnsetType = UNSET
    error: str | UnsetType = UNSET


class Run(Struct, kw_only=True):
    """A run: its state, counts per action and, for a dry run, its plan."""

    id: str
    state: RunState
    mode: str
    trigger: str
    created_at: str | UnsetType = UNSET
    started_at: str | UnsetType = UNSET
    finished_at: str | UnsetType = UNSET
    counts: dict[str, int]
    processed: Annotated[int, Meta(ge=0)]
    expected: Annotated[int, Meta(ge=0)] | UnsetType = UNSET
    dry_run: bool
    errors: dict[str, str | None]
    plan: list[PlanEntry] | UnsetType = UNSET
    waiting: str | UnsetType = UNSET  # why it held its changes, applied once that clears
    cursor: (
        Annotated[
            int,
            Meta(
                ge=-1,
                description="A listing read page by page (a department's members, a poll):"
                " the offset of the next Lucca page, -1 once every page is read. A step"
                " retried after a spent budget resumes there.",
            ),
        ]
        | UnsetType
    ) = UNSET
    poll_started: (
        Annotated[str, Meta(description="A poll's start (tenant time), pinned by its first try.")]
        | UnsetType
    ) = UNSET
    merged_into: Annotated[str, Meta(description="The full run this one joined.")] | (
        UnsetType
    ) = UNSET
    held: Annotated[list[str], Meta(description="The suspensions a held run holds.")] | (
        UnsetType
    ) = UNSET
    confirms: Annotated[str, Meta(description="The held run this run confirms.")] | (
        UnsetType
    ) = UNSET
    resolution: Resolution | UnsetType = UNSET
    resolved_at: str | UnsetType = UNSET
    resolved_by: Annotated[str, Meta(description="The operator's token that did it.")] | (
        UnsetType
    ) = UNSET
    resolved_by_run: (
        Annotated[str, Meta(description="The run that confirmed or superseded this one.")]
        | UnsetType
    ) = UNSET


class SafetyGuard(Struct):
    holding: bool
    run: str | None
    users: list[Any]


class LuccaUnreadable(Struct):
    """Lucca listed items without a usable id: never synced; cleared by a full run that lists
    none."""

    count: Annotated[int, Meta(ge=1)]
    reasons: list[str]
    run: str
    at: str


class SyncStatus(Struct):
    tenant: str
    last_event_at: str | None
    last_full_run_at: str | None
    queue_depth: Annotated[int, Meta(ge=0)]
    safety_guard: SafetyGuard
    permission_loss: str | None
    skip_field_warning: str | None  # the last full run saw the skip field on nobody
    lucca_key_error: str | None
    elevo_token_error: str | None
    last_poll_at: str | None
    lucca_unreadable: LuccaUnreadable | None
    failing_users: dict[str, PlanEntry]
    runs: list[Run]


class UserHistory(Struct):
    tenant: str
    user: str
    history: list[PlanEntry]

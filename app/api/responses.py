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
from app.schemas.tenant_parts import TenantName

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
    # A second profile of the employee retired (a creation whose answer was lost).
    kept_profile: Annotated[str, Meta(description="The profile kept.")] | UnsetType = UNSET
    retired_profile: (
        Annotated[str, Meta(description="The later profile, unlinked and suspended.")] | UnsetType
    ) = UNSET


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
    progress_at: (
        Annotated[
            str, Meta(description="Its last progress; the watchdog fails a run stalled too long.")
        ]
        | UnsetType
    ) = UNSET
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
        Annotated[str, Meta(description="A poll's start (an instant), pinned by its first try.")]
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


class Paused(Struct):
    """Who paused the tenant, when, and why."""

    since: str
    by: Annotated[str, Meta(description="The operator's token that paused it.")]
    reason: str | None


class LastPause(Struct):
    paused_at: str
    paused_by: str
    resumed_at: str
    resumed_by: str


class WaitReason(Struct):
    """Employees whose changes wait for one tenant-level reason; applied once it clears."""

    reason: Literal["paused", "lucca_key", "elevo_token", "skip_field", "budget"]
    users: Annotated[int, Meta(ge=0)]
    since: str | None
    detail: str
    error: str | None  # what Lucca or Elevo answered, for a refused credential


class Waiting(Struct):
    users: Annotated[int, Meta(ge=0)]
    reasons: list[WaitReason]


class TenantPaused(Struct):
    """`POST /tenants/{tenant}/pause`: the pause in force (a second pause keeps the first)."""

    tenant: str
    paused: bool
    since: str
    by: str


class TenantResumed(Struct):
    """`POST /tenants/{tenant}/resume`: `run` applies the changes kept while paused; `runs`
    also holds the full run or poll asked meanwhile."""

    tenant: str
    paused: bool
    run: str | None
    runs: list[str]


class Disconnect(Struct):
    """The tenant's release (DELETE /tenants/{tenant}?release=true): running, or given up."""

    state: Literal["disconnecting", "failed"]
    run: str  # the release run
    error: str | None  # why it failed; DELETE ?release=true again retries


class DuplicateProfile(Struct):
    """A second profile of one employee (a creation whose answer was lost reached Elevo
    late): unlinked and suspended, never deleted."""

    user: str
    kept: str
    suspended: str
    at: str


class OldLuccaEndpoint(Struct):
    """An endpoint Lucca suspended and the service replaced: the customer deletes it."""

    id: str
    suspended_at: str
    missing_since: Annotated[str, Meta(description="The last event received before it failed.")]
    delete_at: Annotated[str, Meta(description="Where, in the customer's Lucca.")]


class LuccaWebhook(Struct):
    """The tenant's webhook endpoint as registered through Lucca's API (`lucca.oauth`)."""

    endpoint_id: str | None
    status: Annotated[
        str | None, Meta(description="Lucca's: active, suspended or inactive; or deleted.")
    ]
    registered_at: str | None
    checked_at: str | None
    refused_topics: Annotated[list[str], Meta(description="Topics Lucca refused to send.")]
    error: Annotated[str | None, Meta(description="Why the last registration or check failed.")]
    missing_since: Annotated[
        str | None, Meta(description="Events are missing since then, until they are replayed.")
    ]
    old_endpoints: list[OldLuccaEndpoint]
    replayed: Annotated[str | None, Meta(description='"replayed N events since ..."')]
    replayed_at: str | None


class WebhookRegistration(Struct):
    created: Annotated[bool, Meta(description="False: the current endpoint was kept.")]
    webhook: LuccaWebhook


class ElevoPaused(Struct):
    why: Annotated[
        Literal["429", "unanswered"],
        Meta(
            description="`429`: Elevo asked to wait (Retry-After); `unanswered`: several"
            " requests got no answer lately (ELEVO_STALL_PAUSE_SECONDS)."
        ),
    ]
    seconds: Annotated[
        float, Meta(ge=0, description="How much longer every call to this Elevo waits.")
    ]


class SyncStatus(Struct):
    tenant: str
    last_event_at: str | None
    last_full_run_at: str | None
    queue_depth: Annotated[
        int, Meta(ge=0, description="This tenant's jobs waiting in the queue (not the others').")
    ]
    safety_guard: SafetyGuard
    permission_loss: str | None
    skip_field_warning: str | None  # the last full run saw the skip field on nobody
    lucca_key_error: str | None
    elevo_token_error: str | None
    config_error: Annotated[
        str | None,
        Meta(
            description="Why the per-minute tick skipped the tenant (its stored configuration"
            " cannot be read or used): no nightly run or poll starts until it is fixed."
        ),
    ]
    last_poll_at: str | None
    elevo_paused: Annotated[
        ElevoPaused | None,
        Meta(description="Calls to the tenant's Elevo wait: the jobs are deferred, not lost."),
    ]
    lucca_unreadable: LuccaUnreadable | None
    paused: Paused | None
    waiting: Waiting
    last_pause: LastPause | None
    lucca_webhook: LuccaWebhook | None
    failing_users: dict[str, PlanEntry]
    duplicate_profiles: list[DuplicateProfile]
    runs: list[Run]
    disconnect: Disconnect | None


class UserHistory(Struct):
    tenant: str
    user: str
    history: list[PlanEntry]


# -- tenant tokens and the audit list (issue 12) ------------------------------------------------

TokenScope = Literal["sync", "operator"]


class TokenInfo(Struct, kw_only=True):
    """A tenant token as listed: never the token itself."""

    id: Annotated[str, Meta(description="What audit entries and resolutions name as `by`.")]
    name: str
    scope: TokenScope
    created_at: str
    expires_at: str
    last_used_at: str | None


class NewToken(TokenInfo, kw_only=True):
    token: Annotated[
        str,
        Meta(description="The bearer token: shown in this answer only, stored as its SHA-256."),
    ]


class TokenList(Struct):
    tenant: str
    tokens: list[TokenInfo]


AuditAction = Literal[
    "create",
    "configure",
    "delete",
    "issue_token",
    "revoke_token",
    "confirm",
    "dismiss",
    "accept_skip_field_loss",
    "pause",
    "resume",
]


class AuditEntry(Struct, kw_only=True):
    at: str
    by: Annotated[str, Meta(description="The token that did it: a token id, or `admin`.")]
    action: AuditAction
    changed: (
        Annotated[list[str], Meta(description="The settings a configuration changed, by path.")]
        | UnsetType
    ) = UNSET
    token: str | UnsetType = UNSET
    scope: TokenScope | UnsetType = UNSET
    run: str | UnsetType = UNSET
    by_run: str | UnsetType = UNSET


class AuditLog(Struct):
    """Who changed the tenant, newest first (at most 200 entries, kept RUN_RETENTION_SECONDS)."""

    tenant: str
    entries: list[AuditEntry]

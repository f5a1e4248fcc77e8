"""The `POST /sync/{tenant}` trigger body as a msgspec Struct, and its parsing into what it asks
for. No I/O; errors are `InvalidDocument`s naming the path (app/schemas/errors.py)."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from app.core.lucca_user import MAX_ID_DIGITS, user_id_of
from app.schemas.common import (
    RUN_ID_PATTERN,
    USER_ID_PATTERN,
    convert,
    loads,
    require,
    whole,
)
from app.service.runs import Dismissal, RunRequest

MAX_USERS_PER_REQUEST: Final = 10_000

UserId = (
    Annotated[int, Meta(ge=1, lt=10**MAX_ID_DIGITS)] | Annotated[str, Meta(pattern=USER_ID_PATTERN)]
)
RunId = Annotated[str, Meta(pattern=RUN_ID_PATTERN)]


class SyncTrigger(Struct, forbid_unknown_fields=True):
    """{} is a full reconciliation; users and mode exclude each other; dismiss goes alone."""

    mode: Literal["full", "changes"] | UnsetType = UNSET
    users: Annotated[list[UserId], Meta(min_length=1, max_length=MAX_USERS_PER_REQUEST)] | (
        UnsetType
    ) = UNSET
    dry_run: bool = False
    # A bool is accepted only to answer `true` with the id of the run to confirm (a 400).
    confirm_suspensions: (
        Annotated[
            RunId | bool,
            Meta(
                description="The id of the held run whose suspensions the operator approves; mode"
                " full only. `true` is refused, naming the run held now."
            ),
        ]
        | UnsetType
    ) = UNSET
    dismiss: (
        Annotated[
            RunId,
            Meta(description="The id of a held run to drop: nobody on its list is suspended."),
        ]
        | UnsetType
    ) = UNSET
    accept_skip_field_loss: Annotated[
        bool,
        Meta(
            description="The customer removed the exclusion checkbox on purpose: lifts the"
            " permission-loss flag, then runs a full reconciliation; mode full only, no dry run."
        ),
    ] = False

    def __post_init__(self) -> None:
        require(
            self.users is UNSET or self.mode is UNSET, "send either `users` or `mode`, not both"
        )
        require(
            self.confirm_suspensions in (UNSET, False)
            or (self.mode in ("full", UNSET) and self.users is UNSET),
            "`confirm_suspensions` goes with mode full",
        )
        require(
            not self.accept_skip_field_loss
            or (self.mode in ("full", UNSET) and self.users is UNSET and not self.dry_run),
            "`accept_skip_field_loss` goes with a full run that is not a dry run",
        )
        require(
            self.dismiss is UNSET
            or (
                self.mode is UNSET
                and self.users is UNSET
                and self.confirm_suspensions is UNSET
                and not self.dry_run
            ),
            "`dismiss` goes alone",
        )
        if self.users is not UNSET:
            require(
                all(user_id_of({"id": user}) for user in self.users),
                "every user id in `users` must be a positive integer of at most 18 digits "
                "(number or string)",
            )


def parse_trigger(raw: bytes) -> RunRequest | Dismissal:
    """What a `POST /sync/{tenant}` body asks for; an empty body is a full run."""
    trigger = convert(loads(raw) if raw.strip() else {}, SyncTrigger)
    if trigger.dismiss is not UNSET:
        return Dismissal(trigger.dismiss)
    if trigger.users is not UNSET:
        users = [user_id_of({"id": user}) or "" for user in trigger.users]
        return RunRequest.of_users(users, dry_run=trigger.dry_run)
    confirm = trigger.confirm_suspensions
    return RunRequest.of_mode(
        "full" if trigger.mode is UNSET else trigger.mode,
        dry_run=trigger.dry_run,
        confirms=confirm if isinstance(confirm, str) else None,
        confirm_unnamed=confirm is True,
        accept_skip_field_loss=trigger.accept_skip_field_loss,
    )


# -- POST /tenants/{tenant}/tokens --------------------------------------------------------------

TOKEN_NAME_PATTERN: Final = "^[A-Za-z0-9 ._:@-]{1,64}$"  # noqa: S105 - a regex
DEFAULT_TOKEN_DAYS: Final = 90
MAX_TOKEN_DAYS: Final = 365


class TokenRequest(Struct, forbid_unknown_fields=True):
    """A tenant token to issue: `sync` starts runs and reads them (the Elevo backend);
    `operator` also reads the tenant's status, histories and config, resolves held runs and
    changes settings other than secrets and destinations."""

    scope: Literal["sync", "operator"]
    name: Annotated[
        str, Meta(pattern=TOKEN_NAME_PATTERN, description="Who holds it, e.g. 'elevo-backend'.")
    ]
    expires_in_days: Annotated[int, Meta(ge=1, le=MAX_TOKEN_DAYS)] = DEFAULT_TOKEN_DAYS

    def __post_init__(self) -> None:
        require(
            whole(TOKEN_NAME_PATTERN, self.name),
            "`name` must be 1 to 64 letters, digits, spaces or '._:@-'",
        )


def parse_token_request(raw: bytes) -> TokenRequest:
    return convert(loads(raw), TokenRequest)


class PauseBody(Struct, forbid_unknown_fields=True):
    """`POST /tenants/{tenant}/pause`: why, for the status (optional; an empty body is fine)."""

    reason: Annotated[str, Meta(max_length=500)] | UnsetType = UNSET


def parse_pause(raw: bytes) -> str | None:
    """The reason a pause body gives, if any."""
    body = convert(loads(raw) if raw.strip() else {}, PauseBody)
    return None if body.reason is UNSET else body.reason.strip() or None

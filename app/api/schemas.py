"""The `POST /sync/{tenant}` trigger body as a msgspec Struct, and its parsing into the run it
asks for. No I/O; errors are `InvalidDocument`s naming the path (app/schemas/errors.py)."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from app.core.lucca_user import user_id_of
from app.schemas.common import USER_ID_PATTERN, convert, loads, require
from app.service.runs import RunRequest

MAX_USERS_PER_REQUEST: Final = 10_000

UserId = Annotated[int, Meta(ge=1)] | Annotated[str, Meta(pattern=USER_ID_PATTERN)]


class SyncTrigger(Struct, forbid_unknown_fields=True):
    """{} is a full reconciliation; users and mode exclude each other."""

    mode: Literal["full", "changes"] | UnsetType = UNSET
    users: Annotated[list[UserId], Meta(min_length=1, max_length=MAX_USERS_PER_REQUEST)] | (
        UnsetType
    ) = UNSET
    dry_run: bool = False
    confirm_suspensions: Annotated[
        bool, Meta(description="Releases the suspensions a safety guard holds; mode full only.")
    ] = False
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
            not self.confirm_suspensions or self.mode in ("full", UNSET) or self.users is not UNSET,
            "`confirm_suspensions` goes with mode full",
        )
        require(
            not self.accept_skip_field_loss
            or (self.mode in ("full", UNSET) and self.users is UNSET and not self.dry_run),
            "`accept_skip_field_loss` goes with a full run that is not a dry run",
        )
        if self.users is not UNSET:
            require(
                all(user_id_of({"id": user}) for user in self.users),
                "every user id in `users` must be a positive integer (number or string)",
            )


def parse_trigger(raw: bytes) -> RunRequest:
    """The run a `POST /sync/{tenant}` body asks for; an empty body is a full run."""
    trigger = convert(loads(raw) if raw.strip() else {}, SyncTrigger)
    if trigger.users is not UNSET:
        users = tuple(user_id_of({"id": user}) or "" for user in trigger.users)
        return RunRequest.of_users(list(users), dry_run=trigger.dry_run)
    return RunRequest.of_mode(
        "full" if trigger.mode is UNSET else trigger.mode,
        dry_run=trigger.dry_run,
        confirm_suspensions=trigger.confirm_suspensions,
        accept_skip_field_loss=trigger.accept_skip_field_loss,
    )

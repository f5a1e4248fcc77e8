"""The Elevo backend's side: /sync/{tenant}, its runs and its employees' histories."""

from __future__ import annotations

from typing import Final

from app.api.errors import ErrorCode
from app.api.limits import MAX_BODY_BYTES
from app.api.openapi_paths.common import (
    BAD_BODY,
    NO_TENANT,
    SLOW_BODY,
    TENANT_PARAM,
    Schema,
    error_response,
    guarded,
    json_response,
    path_param,
    request_body,
)
from app.api.responses import Run as RunDocument
from app.api.responses import RunStarted, SyncStatus, UserHistory
from app.api.schemas import SyncTrigger
from app.schemas.common import RUN_ID_PATTERN, USER_ID_PATTERN
from app.service.access import Action

_TRIGGER_EXAMPLES: Final = {
    "full": {"value": {"mode": "full"}},
    "changes": {"value": {"mode": "changes", "dry_run": True}},
    "users": {"value": {"users": ["416", 417]}},
    "confirm": {"value": {"mode": "full", "confirm_suspensions": "20260101T020000-abcdef"}},
    "dismiss": {"value": {"dismiss": "20260101T020000-abcdef"}},
    "accept_skip_field_loss": {"value": {"accept_skip_field_loss": True}},
}


def sync_paths() -> dict[str, Schema]:
    run_id = path_param(
        "run_id", RUN_ID_PATTERN, "A run id as POST /sync answered it.", "20260101T000000-abcdef"
    )
    user_id = path_param(
        "user_id",
        USER_ID_PATTERN,
        "A Lucca user id: ASCII digits, at most 18 once leading zeros are dropped.",
        "416",
    )
    no_run = error_response(
        "No such tenant, or no such run (or it expired).",
        ErrorCode.UNKNOWN_TENANT,
        ErrorCode.UNKNOWN_RUN,
        ErrorCode.NOT_FOUND,
    )
    return {
        "/sync/{tenant}": {
            "parameters": [TENANT_PARAM],
            "post": _trigger_sync(),
            "get": guarded(
                "syncStatus",
                Action.READ_STATUS,
                {"200": json_response(SyncStatus, "The tenant's sync status."), "404": NO_TENANT},
            ),
        },
        "/sync/{tenant}/runs/{run_id}": {
            "parameters": [TENANT_PARAM, run_id],
            "get": guarded(
                "getRun",
                Action.READ_RUNS,
                {"200": json_response(RunDocument, "The run."), "404": no_run},
            ),
        },
        "/sync/{tenant}/users/{user_id}": {
            "parameters": [TENANT_PARAM, user_id],
            "get": guarded(
                "userHistory",
                Action.READ_STATUS,
                {
                    "200": json_response(UserHistory, "Every decision and write, newest first."),
                    "400": error_response(
                        "The user id is not a positive integer of at most 18 digits.",
                        ErrorCode.BAD_USER,
                    ),
                    "404": NO_TENANT,
                },
            ),
        },
    }


def _trigger_sync() -> Schema:
    return guarded(
        "triggerSync",
        Action.START_RUN,
        {
            "202": json_response(
                RunStarted,
                "The run (the running one for a full run; the dismissed one for a dismissal).",
            ),
            "400": BAD_BODY,
            "404": error_response(
                "No such tenant, or the held run to confirm or dismiss is unknown.",
                ErrorCode.UNKNOWN_TENANT,
                ErrorCode.UNKNOWN_RUN,
                ErrorCode.NOT_FOUND,
            ),
            "408": SLOW_BODY,
            "409": error_response(
                "A confirmation while a full run runs, or of a run not held or resolved"
                " already (superseded, confirmed, dismissed), or while the tenant is"
                " paused; any run while the tenant is disconnecting (its release runs);"
                " the detail names the run.",
                ErrorCode.CONFLICT,
            ),
            "413": error_response(f"Body over {MAX_BODY_BYTES} bytes.", ErrorCode.TOO_LARGE),
        },
        requestBody=request_body(SyncTrigger, required=False, **_TRIGGER_EXAMPLES),
        description=(
            "`confirm_suspensions`, `dismiss` and `accept_skip_field_loss` resolve a held"
            " run: a `sync` token gets a 403 naming `resolve_held`."
        ),
    )

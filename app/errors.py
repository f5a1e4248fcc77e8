"""The project's own exceptions; third-party errors are translated into these at the edges.

SyncError
├── UpstreamError            an external system failed; `retryable` says whether to retry
│   ├── LuccaError
│   │   ├── LuccaAuthError       401/403: the API key is wrong or was revoked
│   │   ├── LuccaRateLimited     429, with Retry-After
│   │   └── LuccaUnavailable     transport error, timeout, 408, 5xx
│   └── ElevoError
│       ├── ElevoAuthError       401/403
│       ├── ElevoRateLimited     429, with Retry-After
│       ├── ElevoUnavailable     transport error, timeout, 5xx
│       ├── ElevoConflict        409 (uniqueness)
│       ├── ElevoPreconditionFailed  412 (If-Match)
│       ├── ElevoNotFound        404
│       └── ElevoRejected        other 4xx (a 400 from Elevo)
└── InvalidLuccaUser         one Lucca user's data is of the wrong shape
"""

from __future__ import annotations


class SyncError(Exception):
    """Base of every error the sync raises on purpose."""


class UpstreamError(SyncError):
    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LuccaError(UpstreamError):
    """Lucca answered with an error, or could not be reached."""


class LuccaAuthError(LuccaError):
    """The API key is wrong, revoked, or lacks a permission: retrying does not help."""


class LuccaRateLimited(LuccaError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class LuccaUnavailable(LuccaError):
    retryable = True


class ElevoError(UpstreamError):
    """Elevo's SCIM API answered with an error, or could not be reached."""


class ElevoAuthError(ElevoError):
    pass


class ElevoRateLimited(ElevoError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class ElevoUnavailable(ElevoError):
    retryable = True


class ElevoConflict(ElevoError):
    """409: the userName (or another unique value) is taken by another profile."""


class ElevoPreconditionFailed(ElevoError):
    """412: the profile changed since it was read; read it again."""

    retryable = True


class ElevoNotFound(ElevoError):
    pass


class ElevoRejected(ElevoError):
    """A 4xx other than the above: the request itself is wrong for Elevo."""


class InvalidLuccaUser(SyncError):
    """One Lucca user holds a value of an unexpected type; recorded, never written."""

    def __init__(self, user_id: str, message: str) -> None:
        super().__init__(f"Lucca user {user_id}: {message}")
        self.user_id = user_id

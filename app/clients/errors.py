"""The upstream errors; third-party errors are translated into these at the edges.

SyncError (app/core/errors.py)
├── UpstreamError            an external system failed; `retryable` says whether to retry
│   ├── RateLimited          429, with Retry-After (the base of both rate limits below)
│   ├── LuccaError
│   │   ├── LuccaAuthError       401/403: the API key is wrong or was revoked
│   │   ├── LuccaRateLimited     429 (also a RateLimited)
│   │   ├── LuccaUnavailable     transport error, timeout, 408, 5xx
│   │   └── LuccaRejected        400 from Lucca's current API, with its errors by field
│   └── ElevoError
│       ├── ElevoAuthError       401/403
│       ├── ElevoRateLimited     429 (also a RateLimited)
│       │   └── ElevoPaused      not sent: a 429 or unanswered requests hold the calls
│       ├── ElevoUnavailable     transport error, timeout, 5xx
│       ├── ElevoConflict        409 (uniqueness)
│       ├── ElevoPreconditionFailed  412 (If-Match)
│       ├── ElevoNotFound        404
│       └── ElevoRejected        other 4xx (a 400 from Elevo)
│   └── AlertsError              a tenant's alerts endpoint refused a notice (4xx)
│       ├── AlertsRateLimited    429 (also a RateLimited)
│       └── AlertsUnavailable    transport error, timeout, 408, 5xx
└── InvalidLuccaUser         one Lucca user's data is of the wrong shape (app/core/errors.py)
"""

from __future__ import annotations

from app.core.errors import SyncError


class UpstreamError(SyncError):
    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RateLimited(UpstreamError):
    """429: the system asks us to wait `retry_after` seconds (None when it did not say)."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class LuccaError(UpstreamError):
    """Lucca answered with an error, or could not be reached."""


class LuccaAuthError(LuccaError):
    """The API key is wrong, revoked, or lacks a permission: retrying does not help."""


class LuccaRateLimited(LuccaError, RateLimited):
    """Lucca's 429."""


class LuccaUnavailable(LuccaError):
    retryable = True


class LuccaRejected(LuccaError):
    """400 from Lucca's current API: `errors` holds its validation messages by field
    (`topics[3]` -> [...]), as its problem+json document says."""

    def __init__(self, message: str, *, errors: dict[str, list[str]]) -> None:
        super().__init__(message, status=400)
        self.errors = errors


class ElevoError(UpstreamError):
    """Elevo's SCIM API answered with an error, or could not be reached."""


class ElevoAuthError(ElevoError):
    pass


class ElevoRateLimited(ElevoError, RateLimited):
    """Elevo's 429."""


class ElevoPaused(ElevoRateLimited):
    """A call not tried: the customer's Elevo asked (by a 429 to some process) to wait, or left
    several requests unanswered; `retry_after` says how much longer."""


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


class AlertsError(UpstreamError):
    """A tenant's alerts endpoint refused a notice, or could not be reached."""


class AlertsRateLimited(AlertsError, RateLimited):
    """The alerts endpoint's 429."""


class AlertsUnavailable(AlertsError):
    retryable = True

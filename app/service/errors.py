"""The service's own exceptions, which the routes map to answers."""

from __future__ import annotations


class Unavailable(Exception):
    """The state store cannot be reached: the caller should retry later (a 503)."""


class TenantUnreadable(Exception):
    """A tenant's stored config does not decrypt or parse; the message names no secret."""


class BadTrigger(Exception):
    """A trigger the service cannot act on as sent (a 400); the message names what to send."""


class UnknownRun(Exception):
    """A trigger names a run the tenant does not have, or no longer has (a 404)."""


class RunConflict(Exception):
    """A trigger the tenant's runs refuse now (a 409); the message names the run in the way."""


class TooManyTokens(Exception):
    """The tenant holds as many tokens as it may (a 409); one must be revoked first."""


class Forbidden(Exception):
    """The caller's token may not do this (a 403); the message names what it may not do."""

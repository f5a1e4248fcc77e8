"""The service's own exceptions, which the routes map to answers."""

from __future__ import annotations


class Unavailable(Exception):
    """The state store cannot be reached: the caller should retry later (a 503)."""


class TenantUnreadable(Exception):
    """A tenant's stored config does not decrypt or parse; the message names no secret."""

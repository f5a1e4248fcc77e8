"""The core's own exceptions (the upstream ones live in app/clients/errors.py)."""

from __future__ import annotations


class SyncError(Exception):
    """Base of every error the sync raises on purpose."""


class InvalidLuccaUser(SyncError):
    """One Lucca user holds a value of an unexpected type; recorded, never written."""

    def __init__(self, user_id: str, message: str) -> None:
        super().__init__(f"Lucca user {user_id}: {message}")
        self.user_id = user_id

"""What a document that breaks its schema raises; the API answers each with its own code, the
store reports it as an unreadable config. Messages name the path, never a value sent."""

from __future__ import annotations


class InvalidDocument(ValueError):
    """The document does not follow its schema; the message names the path."""


class NotJson(InvalidDocument):
    """The bytes are not JSON at all."""


class InvalidName(InvalidDocument):
    """A tenant name that cannot be stored: it names no tenant."""

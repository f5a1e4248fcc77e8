"""Tenant secrets at rest: Fernet tokens bound to the tenant and the field they belong to.

Fernet has no associated data, so the tenant and the purpose travel inside the encrypted
plaintext and are checked after decryption: a token copied into another tenant's document, or
from the API key field into the token field, fails to decrypt instead of being used there.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app.secret import Secret


class SecretKeyError(ValueError):
    """A `SECRETS_KEY` entry is not a Fernet key; the message never contains the key."""


class SecretDecryptError(Exception):
    """A token does not decrypt, or belongs to another tenant or field.

    The message names the tenant and the purpose, never the token or the value.
    """


def _fernet(index: int, key: Secret) -> Fernet:
    try:
        return Fernet(key.reveal().encode())
    except (ValueError, TypeError):
        # `from None`: the underlying error must not carry the key into a traceback.
        raise SecretKeyError(
            f"SECRETS_KEY entry #{index + 1} is not a Fernet key "
            "(url-safe base64 of 32 bytes, e.g. from Fernet.generate_key())"
        ) from None


class SecretBox:
    """Encrypts with the first key; decrypts with any of them (key rotation)."""

    __slots__ = ("_fernet",)

    def __init__(self, keys: Sequence[Secret]) -> None:
        if not keys:
            raise SecretKeyError("SECRETS_KEY holds no key")
        self._fernet = MultiFernet([_fernet(i, key) for i, key in enumerate(keys)])

    def __repr__(self) -> str:
        return "SecretBox(***)"

    def encrypt(self, tenant: str, purpose: str, value: str) -> str:
        plaintext = orjson.dumps({"tenant": tenant, "purpose": purpose, "value": value})
        return self._fernet.encrypt(plaintext).decode("ascii")

    def decrypt(self, tenant: str, purpose: str, token: str) -> Secret:
        try:
            plaintext = self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise SecretDecryptError(
                f"the {purpose} of tenant {tenant!r} does not decrypt with any SECRETS_KEY key"
            ) from None
        try:
            payload = orjson.loads(plaintext)
        except orjson.JSONDecodeError:
            payload = None
        if (
            not isinstance(payload, dict)
            or payload.get("tenant") != tenant
            or payload.get("purpose") != purpose
            or not isinstance(payload.get("value"), str)
        ):
            raise SecretDecryptError(
                f"the {purpose} of tenant {tenant!r} was encrypted for another tenant or field"
            )
        return Secret(payload["value"])

    def rotate(self, tenant: str, purpose: str, token: str) -> str:
        """The same secret encrypted under the first key (checked to belong here first)."""
        return self.encrypt(tenant, purpose, self.decrypt(tenant, purpose, token).reveal())

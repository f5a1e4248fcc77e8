"""What every document schema shares: anchored patterns and msgspec conversion whose errors
name the path and never echo a value. No I/O."""

from __future__ import annotations

import re
from typing import Final, TypeVar

import msgspec
import orjson

from app.schemas.errors import InvalidDocument, NotJson

# Anchored patterns, for msgspec and the OpenAPI document alike. msgspec applies them with
# `re.search`, where `$` also matches before a final newline: `whole` checks them again.
TENANT_PATTERN: Final = "^[a-z0-9][a-z0-9-]{0,62}$"
SUBDOMAIN_PATTERN: Final = "^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
FIELD_CODE_PATTERN: Final = "^[A-Za-z0-9_]{1,100}$"
FIELD_PATH_PATTERN: Final = "^[A-Za-z_][A-Za-z0-9_]*(?:\\.[A-Za-z_][A-Za-z0-9_]*){0,7}$"
FIELD_NAME_PATTERN: Final = '^[^"\\\\]+$'
NIGHTLY_AT_PATTERN: Final = "^(?:[01][0-9]|2[0-3]):[0-5][0-9]$"
SECRET_PATTERN: Final = "^[^\\x00-\\x1f\\x7f]*$"  # noqa: S105 - a regex, not a secret
OAUTH_CLIENT_ID_PATTERN: Final = "^[A-Za-z0-9._:-]{1,200}$"
SCIM_URL_PATTERN: Final = "^[hH][tT][tT][pP][sS]?://"
# At most 18 significant digits: MAX_ID_DIGITS of app/core/lucca_user.py.
USER_ID_PATTERN: Final = "^0*[1-9][0-9]{0,17}$"
RUN_ID_PATTERN: Final = "^[0-9]{8}T[0-9]{6}-[0-9a-f]{6}$"

TENANT_RE: Final = re.compile(TENANT_PATTERN)
RUN_ID_RE: Final = re.compile(RUN_ID_PATTERN)


def require(condition: bool, message: str) -> None:
    """Refuse from a `__post_init__`: msgspec turns the ValueError into an error at the path."""
    if not condition:
        raise ValueError(message)


def whole(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def loads(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise NotJson("the body is not valid JSON") from None


_T = TypeVar("_T")


def convert(document: object, into: type[_T]) -> _T:
    try:
        return msgspec.convert(document, into)
    except msgspec.ValidationError as exc:
        raise InvalidDocument(_without_values(str(exc))) from None


_UNKNOWN_FIELD: Final = "Object contains unknown field `"
_AT_PATH: Final = re.compile(r"(.*)( - at `\$[\w.\[\]]*`)", re.DOTALL)


def _without_values(message: str) -> str:
    """msgspec's message, minus the two that quote the caller's text: an enum's value, and an
    unknown key's name (cut short, as the caller may have put anything there)."""
    found = _AT_PATH.fullmatch(message)
    # msgspec names no path for the top level: say it.
    text, where = (found.group(1), found.group(2)) if found else (message, " - at `$`")
    if text.startswith("Invalid enum value"):
        text = "Invalid enum value"
    elif text.startswith(_UNKNOWN_FIELD):
        name = text.removeprefix(_UNKNOWN_FIELD).removesuffix("`")
        text = f"{_UNKNOWN_FIELD}{name[:64]}`"
    return text + where

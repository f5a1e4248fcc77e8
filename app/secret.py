"""A value that must never be printed, logged, serialised or returned."""

from __future__ import annotations

from typing import Final

REDACTED: Final = "***"


class Secret:
    """Wraps a credential so that ``repr``, ``str`` and f-strings show ``***``.

    The clear value is reachable only through :meth:`reveal`, which makes every
    place that handles a credential greppable.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would write the clear value wherever the pickle goes.
        raise TypeError("a Secret cannot be pickled")

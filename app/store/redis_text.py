"""Redis answers bytes (the pool does not decode them); the stores read them as text."""


def as_text(value: bytes | str | None) -> str:
    """A reply as text: "" for a missing one."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value

"""Redis answers bytes (the pool does not decode them); the stores read them as text. Also the
one script that counts a hash's values in Redis, so that a hash of 10,000 members sends back a
few numbers, not 10,000 strings."""

from collections.abc import Mapping, Sequence
from typing import Any

# KEYS[1]: a hash. Returns its values with their counts, flattened: value, n, value, n, ...
COUNT_VALUES = """
local counts = {}
for _, value in ipairs(redis.call('HVALS', KEYS[1])) do
  counts[value] = (counts[value] or 0) + 1
end
local flat = {}
for value, n in pairs(counts) do
  flat[#flat + 1] = value
  flat[#flat + 1] = n
end
return flat
"""


def as_text(value: bytes | str | None) -> str:
    """A reply as text: "" for a missing one."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def as_text_map(raw: Mapping[Any, bytes | str]) -> dict[str, str]:
    """A hash as HGETALL answers it, as text."""
    return {as_text(key): as_text(value) for key, value in raw.items()}


def value_counts(flat: Sequence[Any]) -> dict[str, int]:
    """What COUNT_VALUES answers: value -> how many members hold it."""
    return {as_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}

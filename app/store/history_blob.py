"""An employee's history as one Redis string of frames (app/store/records.py writes
it by script, `HISTORY_SCRIPT`; the readers parse it here).

A frame is one decision's body -- the entry but its `at` and `run`, packed by history_format
and deflated with a preset dictionary -- followed by its occurrences: the (at, run) of each
consecutive decision with those very body bytes. The excluded employee's `skipped`, recorded
every night (sync-rules.md), so costs an occurrence (~12 bytes) a night instead of a whole
entry; reading expands every occurrence back into a whole entry, newest first. Frames and
occurrences are stored oldest first: the script adds at one end and drops at the other.

    blob       = varint(entries) varint(offset of the newest frame in the frames) frame*
    frame      = varint(len(body)) body varint(count) occurrence{count}
    body       = format byte (1: deflate, dictionary 1) + raw deflate of the packed entry
    occurrence = 0x01 ms(6)                              `at` in the usual shape, no run
               | 0x02 ms(6) zigzag-varint(s) hex(3)      and a run id in the usual shape,
                                                         s = at's second - the run's
               | 0x00 varint(n) JSON [at, run]           anything else

A stored format: the dictionary and the tags never change meaning (a new dictionary takes a
new format byte).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from app.store import history_format
from app.store.run_model import RUN_ID_TIME, iso_ms

DEFLATE_1: Final = 1
# What the stored entries repeat (the packed forms of app/core/decision.py's reasons and of
# history_format's marks), the most frequent last: deflate reaches the end for less.
DICTIONARY_1: Final = (
    b'"error":"Elevo refused the update: ","error":"Elevo refused the create: '
    b'"kept_profile":"","retired_profile":"a second profile  was linked to this employee, '
    b"left by a creation whose answer was lost: unlinked and suspended; profile  is kept"
    b'"reason":"the tenant disconnects: syncSource removed, the profile is Elevo\'s again"'
    b'"reason":"a change notice came after this run read Lucca: the employee\'s own sync '
    b'writes it""reason":"last seen excluded, and the skip field is no longer shown: held '
    b'until a complete listing shows whether the API key still sees it""reason":"held by the '
    b'safety guard: "reason":"userName \'\' belongs to profile  (externalId nobody, syncSource '
    b'none)","action":"conflict","action":"held","action":"error","action":"release",'
    b'"reason":"skip checkbox ticked in Lucca","action":"adopt","reason":"released profile '
    b'taken back","reason":"hand-made profile with this userName","action":"reactivate",'
    b'"reason":"employed again","action":"suspend","reason":"contract ended","written":true,'
    b'"diff":{"~a":{"old":true,"new":false}}}"action":"suspend","reason":"no longer in Lucca"'
    b'"action":"held","reason":"waiting: ","~v:customFields[name eq \\"\\"].value":"'
    b'"action":"create","reason":"new in Lucca","written":true,"set":{"~x":"","~u":"'
    b'","~g":"","~f":"","~t":"","~m":"","~n":"000","~d":"","~b":"","~s":"20'
    b'-01-","~a":true,"~o":"lucca"}}{"action":"update","reason":"synced fields differ",'
    b'"written":true,"diff":{"~t":{"old":"","new":""},"~d":{"old":"","new":""}}}'
    b'{"action":"skipped","reason":"left: profile not managed","written":false}'
    b'{"action":"skipped","reason":"gone: no Elevo profile","written":false}'
    b'{"action":"skipped","reason":"left: no Elevo profile","written":false}'
    b'{"action":"skipped","reason":"excluded: no Elevo profile","written":false}'
    b'{"action":"skipped","reason":"excluded: profile not managed","written":false}'
)

TEXT, AT, AT_RUN = 0, 1, 2  # an occurrence's tag
_MS_BYTES = 6
_HEX_BYTES = 3
_AT_SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")  # run_model.iso_ms
_RUN_SHAPE = re.compile(r"\d{8}T\d{6}-[0-9a-f]{6}")  # run_model.draft_run


# -- varints ------------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos`, and the position after it."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


# -- bodies -------------------------------------------------------------------------------------


def body(entry: Mapping[str, Any]) -> bytes:
    """The stored body of an entry: what identical decisions share (all but `at` and `run`)."""
    packed = history_format.pack({k: v for k, v in entry.items() if k not in {"at", "run"}})
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=DICTIONARY_1)
    return bytes([DEFLATE_1]) + deflate.compress(packed) + deflate.flush()


def inflate(stored: bytes) -> bytes:
    """The packed entry (history_format) a body holds, its `at` and `run` left out."""
    if stored[:1] != bytes([DEFLATE_1]):
        raise ValueError(f"unknown history body format {stored[:1]!r}")
    inflater = zlib.decompressobj(-15, zdict=DICTIONARY_1)
    return inflater.decompress(stored[1:]) + inflater.flush()


def whole(packed: bytes, user_id: str, at: Any, run: Any) -> dict[str, Any]:
    """The entry as the service built it: the packed body with this occurrence's time and run."""
    entry = history_format.unpack(packed, user_id)
    entry["at"], entry["run"] = at, run
    return entry


# -- occurrences --------------------------------------------------------------------------------


def _ms(at: Any) -> int | None:
    """`at` in milliseconds since the epoch, when its text is exactly what that gives back."""
    if not isinstance(at, str) or not _AT_SHAPE.fullmatch(at):
        return None
    try:
        moment = datetime.fromisoformat(at[:-1]).replace(tzinfo=UTC)
    except ValueError:
        return None
    ms = round(moment.timestamp() * 1000)
    return ms if 0 <= ms < 1 << (8 * _MS_BYTES) and _at_text(ms) == at else None


def _at_text(ms: int) -> str:
    return iso_ms(datetime.fromtimestamp(ms / 1000, UTC))


def _run_second(run: str) -> int | None:
    if not _RUN_SHAPE.fullmatch(run):
        return None
    try:
        second = int(datetime.strptime(run[:15], RUN_ID_TIME).replace(tzinfo=UTC).timestamp())
    except ValueError:
        return None
    return second if _run_text(second, bytes.fromhex(run[16:])) == run else None


def _run_text(second: int, token: bytes) -> str:
    return datetime.fromtimestamp(second, UTC).strftime(RUN_ID_TIME) + "-" + token.hex()


def occurrence(at: Any, run: Any) -> bytes:
    """The stored (at, run) of one entry: 7 to ~12 bytes in the shapes the service writes."""
    ms = _ms(at)
    if ms is not None and run is None:
        return bytes([AT]) + ms.to_bytes(_MS_BYTES, "big")
    second = _run_second(run) if ms is not None and isinstance(run, str) else None
    if ms is not None and second is not None:
        delta = ms // 1000 - second
        zigzag = delta * 2 if delta >= 0 else -delta * 2 - 1
        token = bytes.fromhex(run[16:])
        return bytes([AT_RUN]) + ms.to_bytes(_MS_BYTES, "big") + varint(zigzag) + token
    text = orjson.dumps([at, run], default=str)
    return bytes([TEXT]) + varint(len(text)) + text


def retention_start(occurrence: bytes, retention_seconds: int) -> int:
    """The time (ms since the epoch) before which an entry is older than the retention, as
    seen from the entry whose stored `occurrence` this is; 0 when its time is not in the
    usual shape (nothing expires). The usual occurrences hold the time in ms, read back
    rather than parsed again; one stored as text (a run of another shape) is parsed."""
    ms: int | None
    if occurrence[0] == TEXT:
        ms = _ms(read_occurrence(occurrence, 0)[0])
    else:
        ms = int.from_bytes(occurrence[1 : 1 + _MS_BYTES], "big")
    return max(ms - retention_seconds * 1000, 0) if ms is not None else 0


def read_occurrence(data: bytes, pos: int) -> tuple[Any, Any, int]:
    """(at, run) of the occurrence at `pos`, and the position after it."""
    tag = data[pos]
    if tag == TEXT:
        size, start = read_varint(data, pos + 1)
        at, run = orjson.loads(data[start : start + size])
        return at, run, start + size
    ms = int.from_bytes(data[pos + 1 : pos + 1 + _MS_BYTES], "big")
    pos += 1 + _MS_BYTES
    if tag == AT:
        return _at_text(ms), None, pos
    if tag != AT_RUN:
        raise ValueError(f"unknown history occurrence tag {tag}")
    zigzag, pos = read_varint(data, pos)
    delta = zigzag // 2 if zigzag % 2 == 0 else -(zigzag + 1) // 2
    token = data[pos : pos + _HEX_BYTES]
    return _at_text(ms), _run_text(ms // 1000 - delta, token), pos + _HEX_BYTES


# Adds one entry (ARGV[1]: its body, ARGV[2]: its occurrence) to the blob at KEYS[1]: one
# more occurrence of the newest frame when the bodies are the same bytes (the same decision
# again), a new frame otherwise; then drops the oldest occurrences beyond ARGV[3], and those
# older than ARGV[5] (ms since the epoch; absent or 0: none) up to the first that is not or
# has no time in the usual shape, and sets the blob to expire in ARGV[4] seconds. Frames and
# occurrences are kept oldest first, with the newest frame's offset in the header: an add
# and a drop touch only the two ends (and the expired), whatever the length. Atomic:
# concurrent writers each add theirs.
HISTORY_SCRIPT: Final = """
local blob = redis.call('GET', KEYS[1]) or ''
local body, occ, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local byte, sub = string.byte, string.sub
local function varint(s, pos)
  local value, scale = 0, 1
  while true do
    local b = byte(s, pos)
    if b < 128 then return value + b * scale, pos + 1 end
    value, scale, pos = value + (b - 128) * scale, scale * 128, pos + 1
  end
end
local function encode(n)
  local out = ''
  while n >= 128 do out, n = out .. string.char(n % 128 + 128), math.floor(n / 128) end
  return out .. string.char(n)
end
local function skip(s, pos)
  local tag = byte(s, pos)
  if tag == 1 then return pos + 7 end
  if tag == 2 then local _, after = varint(s, pos + 7) return after + 3 end
  local size, after = varint(s, pos + 1)
  return after + size
end
local total, newest, base = 0, 0, 1
if #blob > 0 then
  total, base = varint(blob, 1)
  newest, base = varint(blob, base)
end
local newest_at = base + newest
-- The oldest occurrences older than the retention's start, as far as the first that is not.
local expired, cutoff = 0, tonumber(ARGV[5] or '0')
local walk = base
while cutoff > 0 and walk <= #blob do
  local size, at = varint(blob, walk)
  local n, pos = varint(blob, at + size)
  for _ = 1, n do
    local tag, ms = byte(blob, pos), 0
    if tag ~= 1 and tag ~= 2 then cutoff = 0 break end
    for k = 1, 6 do ms = ms * 256 + byte(blob, pos + k) end
    if ms >= cutoff then cutoff = 0 break end
    expired, pos = expired + 1, skip(blob, pos)
  end
  walk = pos
end
local merge, count_at, count = false, nil, 0
if #blob > 0 then
  local size, at = varint(blob, newest_at)
  if sub(blob, at, at + size - 1) == body then
    merge, count_at = true, at + size
    count = varint(blob, count_at)
  end
end
-- Drop the oldest occurrences beyond the limit (the new one counted), first frame first:
-- `head` is a frame that keeps some of its occurrences, `from` where the copy resumes.
local drop, head, from = math.max(total + 1 - limit, expired), '', base
local dropped = math.max(drop, 0)
while drop > 0 and from <= #blob do
  local size, at = varint(blob, from)
  local n, stop = varint(blob, at + size)
  for _ = 1, math.min(n, drop) do stop = skip(blob, stop) end
  if n > drop then
    local extra = 0
    if merge and from == newest_at then extra, count_at = 1, nil end
    head = sub(blob, from, at + size - 1) .. encode(n - drop + extra)
    drop = 0
  else
    if from == newest_at then merge = false end
    drop = drop - n
  end
  from = stop
end
total = total + 1 - dropped + math.max(drop, 0)
local before, bumped, after, frame = sub(blob, from), '', '', ''
if merge and count_at then
  local _, count_end = varint(blob, count_at)
  before, bumped, after = sub(blob, from, count_at - 1), encode(count + 1), sub(blob, count_end)
end
if merge then
  newest = count_at and #head + newest_at - from or 0
else
  newest, frame = #head + #before, encode(#body) .. body .. encode(1)
end
local stored = encode(total) .. encode(newest) .. head .. before .. bumped .. after .. frame .. occ
redis.call('SET', KEYS[1], stored, 'EX', ARGV[4])
return total
"""


# -- blobs --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """One decision's body, and the (at, run) of each time it was taken, newest first."""

    body: bytes
    occurrences: list[tuple[Any, Any]]


def frames(blob: bytes | None) -> list[Frame]:
    """The blob's frames, newest first (their bodies still deflated)."""
    data = blob or b""
    if not data:
        return []
    _, pos = read_varint(data, 0)  # the entries, for the script
    _, pos = read_varint(data, pos)  # the newest frame's offset, for the script
    found = []
    while pos < len(data):
        size, pos = read_varint(data, pos)
        stored = data[pos : pos + size]
        count, pos = read_varint(data, pos + size)
        occurrences = []
        for _ in range(count):
            at, run, pos = read_occurrence(data, pos)
            occurrences.append((at, run))
        found.append(Frame(stored, occurrences[::-1]))
    return found[::-1]


def read(
    blob: bytes | None, old: Sequence[bytes], user_id: str, limit: int
) -> Iterator[dict[str, Any]]:
    """The entries, whole, newest first, at most `limit`: the blob's, then those of the list
    an earlier version kept (`old`, older than any of the blob's)."""
    shown = 0
    for frame in frames(blob):
        packed = inflate(frame.body)
        for at, run in frame.occurrences:
            if shown >= limit:
                return
            shown += 1
            yield whole(packed, user_id, at, run)
    for raw in old[: max(limit - shown, 0)]:
        yield history_format.unpack(raw, user_id)


def entry_of_run(
    blob: bytes | None, old: Sequence[bytes], user_id: str, run_id: str, lookback: int
) -> dict[str, Any] | None:
    """The newest of the `lookback` newest entries that `run_id` left, if one is: only its
    frame's body is inflated."""
    seen = 0
    for frame in frames(blob):
        for at, run in frame.occurrences:
            if seen >= lookback:
                return None
            seen += 1
            if run == run_id:
                return whole(inflate(frame.body), user_id, at, run)
    marker = run_id.encode()
    for raw in old[: max(lookback - seen, 0)]:
        if marker not in raw:  # cheaper than parsing every entry
            continue
        entry = history_format.unpack(raw, user_id)
        if entry.get("run") == run_id:
            return entry
    return None


def blob_of(entries_newest_first: Sequence[Mapping[str, Any]]) -> bytes:
    """The blob the script leaves after these entries, oldest first, were added (tests, the
    benchmarks' fixtures): identical consecutive bodies share a frame."""
    built: list[tuple[bytes, list[bytes]]] = []  # oldest first, as stored
    for entry in reversed(entries_newest_first):
        stored, occ = body(entry), occurrence(entry.get("at"), entry.get("run"))
        if built and built[-1][0] == stored:
            built[-1][1].append(occ)
        else:
            built.append((stored, [occ]))
    encoded = [varint(len(b)) + b + varint(len(occs)) + b"".join(occs) for b, occs in built]
    newest = sum(len(frame) for frame in encoded[:-1])
    return varint(len(entries_newest_first)) + varint(newest) + b"".join(encoded)

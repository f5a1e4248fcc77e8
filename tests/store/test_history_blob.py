"""An employee's history as one string of frames (app/store/history_blob.py): what is stored
reads back as the very entries given, identical consecutive decisions share a frame, and the
script that writes it (against a real Redis) keeps the newest 200."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from arq.connections import ArqRedis
from hypothesis import given
from hypothesis import strategies as st

from app.store import history_blob, history_format, keys, run_rows
from app.store.history_blob import HISTORY_SCRIPT
from app.store.records import HISTORY_LENGTH, Records
from tests.store.test_history_format import CREATION, SKIPPED, UPDATE

# Longer than any story here spans: no entry goes by age but in the tests of that.
YEAR = 365 * 24 * 3600
EXCLUDED: dict[str, Any] = {
    "user": "416",
    "action": "skipped",
    "reason": "excluded: profile not managed",
    "diff": {},
    "at": "2026-12-06T02:13:05.120Z",
    "run": "20261206T020000-a1b2c3",
    "written": False,
    "dry_run": False,
}


def nightly(entry: dict[str, Any], night: int) -> dict[str, Any]:
    """`entry` decided again `night` nights later, by that night's run."""
    start = datetime(2026, 12, 6, 2, tzinfo=UTC) + timedelta(days=night)
    at = start + timedelta(seconds=night * 7, milliseconds=night)
    return entry | {
        "at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "run": start.strftime("%Y%m%dT%H%M%S") + f"-{night:06x}",
    }


# -- occurrences ------------------------------------------------------------------------------

USUAL_AT = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)).map(
    lambda d: d.replace(tzinfo=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
)
USUAL_RUN = st.tuples(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
    st.binary(min_size=3, max_size=3),
).map(lambda p: p[0].strftime("%Y%m%dT%H%M%S") + "-" + p[1].hex())
ANY_TEXT = st.text(max_size=40)
ANY_VALUE = st.one_of(st.none(), ANY_TEXT, st.integers(-(2**63), 2**63 - 1), st.booleans())


@given(st.one_of(USUAL_AT, ANY_VALUE), st.one_of(USUAL_RUN, st.none(), ANY_TEXT))
def test_an_occurrence_reads_back_exactly(at: Any, run: Any) -> None:
    stored = history_blob.occurrence(at, run)
    assert history_blob.read_occurrence(stored + b"tail", 0) == (at, run, len(stored))


@pytest.mark.parametrize(
    ("at", "run", "size"),
    [
        ("2026-12-05T02:13:00.123Z", "20261205T021300-a1b2c3", 11),
        ("2026-12-05T02:13:00.123Z", "20261205T020000-a1b2c3", 12),  # 780 s after its run
        ("2026-12-05T02:13:00.123Z", "20261205T021301-a1b2c3", 11),  # a clock behind
        ("2026-12-05T02:13:00.123Z", None, 7),
    ],
)
def test_the_usual_shapes_take_a_few_bytes(at: str, run: str | None, size: int) -> None:
    stored = history_blob.occurrence(at, run)
    assert len(stored) == size
    assert history_blob.read_occurrence(stored, 0)[:2] == (at, run)


@pytest.mark.parametrize(
    ("at", "run"),
    [
        ("2026-12-05T02:13:00.123+00:00", "20261205T021300-a1b2c3"),
        ("2026-02-30T02:13:00.123Z", "20261205T021300-a1b2c3"),
        ("2026-12-05T02:13:00.123Z", "20261205T021300-A1B2C3"),
        ("2026-12-05T02:13:00.123Z", "20261305T021300-a1b2c3"),
        ("2026-12-05T02:13:00.123Z", "20261205T021300-a1b2c3-retry"),
    ],
)
def test_other_shapes_are_stored_as_text(at: str, run: str) -> None:
    stored = history_blob.occurrence(at, run)
    assert stored[0] == history_blob.TEXT
    assert history_blob.read_occurrence(stored, 0)[:2] == (at, run)


@pytest.mark.parametrize("run", ["20261205T021300-a1b2c3", None, "a run of another shape"])
def test_the_retention_starts_a_retention_before_the_occurrences_time(run: str | None) -> None:
    at = "2026-12-05T02:13:00.123Z"
    expected = datetime(2026, 11, 5, 2, 13, 0, 123000, UTC).timestamp() * 1000
    start = history_blob.retention_start(history_blob.occurrence(at, run), 30 * 24 * 3600)
    assert start == round(expected)
    assert history_blob.retention_start(history_blob.occurrence(at, run), YEAR * 100) == 0


@pytest.mark.parametrize("run", ["20261205T021300-a1b2c3", None])
def test_an_occurrence_of_unusual_time_starts_no_retention(run: str | None) -> None:
    stored = history_blob.occurrence("2026-12-05T02:13:00.123+00:00", run)
    assert history_blob.retention_start(stored, 60) == 0


@given(st.integers(min_value=0, max_value=2**64))
def test_a_varint_reads_back(value: int) -> None:
    assert history_blob.read_varint(history_blob.varint(value) + b"\x00", 0) == (
        value,
        len(history_blob.varint(value)),
    )


# -- bodies and blobs ---------------------------------------------------------------------------


@pytest.mark.parametrize("entry", [CREATION, UPDATE, SKIPPED, EXCLUDED], ids=lambda e: e["action"])
def test_an_entry_reads_back_from_its_body_and_occurrence(entry: dict[str, Any]) -> None:
    blob = history_blob.blob_of([entry])
    assert list(history_blob.read(blob, [], entry["user"], HISTORY_LENGTH)) == [entry]


def test_a_body_is_its_packed_form_deflated_smaller() -> None:
    body = history_blob.body(CREATION)
    assert body[0] == history_blob.DEFLATE_1
    assert history_blob.inflate(body) == history_format.pack(
        {k: v for k, v in CREATION.items() if k not in {"at", "run"}}
    )
    assert len(body) < 0.8 * len(history_format.pack(CREATION))
    assert len(history_blob.body(EXCLUDED)) < 12


ENTRY = st.sampled_from([CREATION, UPDATE, SKIPPED, EXCLUDED]).flatmap(
    lambda e: st.integers(0, 400).map(lambda n: nightly(e, n))
)


@given(st.lists(ENTRY, max_size=30), st.integers(1, 40))
def test_a_blob_reads_back_its_entries_newest_first(entries: list[Any], limit: int) -> None:
    blob = history_blob.blob_of(entries)
    assert list(history_blob.read(blob, [], "416", limit)) == entries[:limit]


def test_consecutive_identical_decisions_share_a_frame() -> None:
    night = [nightly(EXCLUDED, n) for n in (3, 2, 1)]
    assert len(list(history_blob.frames(history_blob.blob_of(night)))) == 1
    broken = [night[0], nightly(UPDATE, 2), night[2]]
    assert len(list(history_blob.frames(history_blob.blob_of(broken)))) == 3


def test_the_old_list_reads_after_the_blob() -> None:
    blob = history_blob.blob_of([EXCLUDED])
    old = [history_format.pack(UPDATE), orjson.dumps(CREATION)]  # compact, and whole
    assert list(history_blob.read(blob, old, "416", 200)) == [EXCLUDED, UPDATE, CREATION]
    assert list(history_blob.read(blob, old, "416", 2)) == [EXCLUDED, UPDATE]


def test_an_unknown_body_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        history_blob.inflate(b"\x09" + history_blob.body(EXCLUDED)[1:])


# -- the script, against Redis -----------------------------------------------------------------


async def blob_in(redis: ArqRedis) -> bytes:
    return bytes(await redis.get(keys.history("acme", "416")))


async def test_the_script_leaves_what_blob_of_builds(redis: ArqRedis) -> None:
    records = Records(redis, YEAR)
    story = [CREATION, UPDATE] + [nightly(EXCLUDED, n) for n in range(5)] + [SKIPPED]
    story += [nightly(EXCLUDED, n) for n in range(5, 7)]
    for entry in story:
        await records.add("acme", "416", entry, failing=None)
    newest_first = story[::-1]
    assert await blob_in(redis) == history_blob.blob_of(newest_first)
    assert await records.history("acme", "416") == newest_first
    assert YEAR - 10 < await redis.ttl(keys.history("acme", "416")) <= YEAR


async def test_two_identical_skips_read_back_as_two_entries(redis: ArqRedis) -> None:
    records = Records(redis, YEAR)
    first, second = nightly(EXCLUDED, 0), nightly(EXCLUDED, 1)
    await records.add("acme", "416", first, failing=None)
    before = len(await blob_in(redis))
    await records.add("acme", "416", second, failing=None)
    assert len(await blob_in(redis)) - before == len(
        history_blob.occurrence(second["at"], second["run"])
    )
    assert await records.history("acme", "416") == [second, first]
    assert await run_rows.entries_of_run(redis, "acme", first["run"], ["416"]) == {"416": first}


async def test_the_script_keeps_the_newest_200(redis: ArqRedis) -> None:
    records = Records(redis, YEAR)
    story = [CREATION] + [nightly(EXCLUDED, n) for n in range(150)] + [nightly(UPDATE, 150)]
    story += [nightly(EXCLUDED, n) for n in range(151, 260)]
    for entry in story:
        await records.add("acme", "416", entry, failing=None)
    newest = story[::-1][:HISTORY_LENGTH]
    assert await records.history("acme", "416") == newest
    assert await blob_in(redis) == history_blob.blob_of(newest)


async def test_a_cut_that_falls_between_frames_drops_the_older_ones(redis: ArqRedis) -> None:
    records = Records(redis, YEAR)
    # Each its own frame: the oldest, the creation, falls out whole.
    story = [CREATION] + [nightly(UPDATE if n % 2 else EXCLUDED, n) for n in range(200)]
    for entry in story:
        await records.add("acme", "416", entry, failing=None)
    assert await records.history("acme", "416") == story[::-1][:HISTORY_LENGTH]


def _by_time(entry: dict[str, Any]) -> tuple[str, str]:
    return entry["at"], entry["action"]


async def test_an_entry_older_than_the_retention_goes_as_the_next_one_lands(
    redis: ArqRedis,
) -> None:
    """RUN_RETENTION_SECONDS is how long an entry is kept: a history that gets an entry every
    night (an excluded employee's) keeps the last 30 days of them, not 200 nights."""
    records = Records(redis, 30 * 24 * 3600)
    creation = nightly(CREATION, 0) | {"action": "create"}
    nights = [nightly(EXCLUDED, n) for n in range(1, 46)]
    for entry in [creation, *nights]:
        await records.add("acme", "416", entry, failing=None)
    # Night 45's entry keeps the entries within 30 days of its own time: nights 16 to 45
    # (night 15's came a few minutes earlier in its day than night 45's); the creation went.
    kept = await records.history("acme", "416")
    assert [entry["run"] for entry in kept] == [entry["run"] for entry in nights[15:][::-1]]
    assert await blob_in(redis) == history_blob.blob_of(nights[15:][::-1])


async def test_an_entry_of_unusual_time_stops_the_expiry_by_age(redis: ArqRedis) -> None:
    """An occurrence whose time the script cannot read (not the service's shape) is kept, and
    so are the newer ones: only the count (200) trims past it."""
    records = Records(redis, 24 * 3600)
    odd = EXCLUDED | {"at": "long ago", "run": None}
    story = [nightly(EXCLUDED, 0), odd, nightly(EXCLUDED, 1), nightly(EXCLUDED, 5)]
    for entry in story:
        await records.add("acme", "416", entry, failing=None)
    assert await records.history("acme", "416") == story[1:][::-1]


async def test_concurrent_writers_each_add_theirs(redis: ArqRedis) -> None:
    records = Records(redis, YEAR)
    nights = [nightly(EXCLUDED, n) for n in range(40)] + [nightly(UPDATE, n) for n in range(40)]
    await asyncio.gather(*(records.add("acme", "416", e, failing=None) for e in nights))
    found = await records.history("acme", "416")
    assert sorted(found, key=_by_time) == sorted(nights, key=_by_time)


async def test_an_earlier_versions_list_reads_as_the_older_entries(redis: ArqRedis) -> None:
    records = Records(redis, YEAR)
    old = keys.old_history("acme", "416")
    await redis.rpush(old, history_format.pack(nightly(EXCLUDED, 1)), orjson.dumps(CREATION))
    await records.add("acme", "416", nightly(EXCLUDED, 2), failing=None)
    whole = [nightly(EXCLUDED, 2), nightly(EXCLUDED, 1), CREATION]
    assert await records.history("acme", "416") == whole
    assert await redis.llen(old) == 2  # never written again: it expires on its own
    assert await run_rows.latest_entries(redis, "acme", ["416"]) == {"416": whole[0]}
    found = await run_rows.latest_entries_of(redis, "acme", ["416"], {"create"})
    assert found == {"416": CREATION}
    run = nightly(EXCLUDED, 1)["run"]
    assert await run_rows.entries_of_run(redis, "acme", run, ["416"]) == {"416": whole[1]}


async def test_only_an_earlier_versions_list_still_reads(redis: ArqRedis) -> None:
    await redis.rpush(keys.old_history("acme", "416"), orjson.dumps(CREATION))
    assert await Records(redis, YEAR).history("acme", "416") == [CREATION]
    assert await run_rows.latest_entries(redis, "acme", ["416", "417"]) == {"416": CREATION}


async def test_the_script_trims_any_story_to_any_limit(redis: ArqRedis) -> None:
    """A small limit and a random story: every cut, inside a frame or between two, leaves the
    blob `blob_of` builds from the newest entries."""
    rng = random.Random(416)
    kinds = [CREATION, UPDATE, SKIPPED, EXCLUDED, EXCLUDED, EXCLUDED]
    key = keys.history("acme", "416")
    for limit in (1, 2, 3, 5, 8, 13):
        await redis.delete(key)
        story: list[dict[str, Any]] = []
        for night in range(60):
            entry = nightly(rng.choice(kinds), night)
            entry["run"] = rng.choice([entry["run"], None, "a run of another shape " * night])
            story.insert(0, entry)
            stored = history_blob.body(entry)
            occurrence = history_blob.occurrence(entry["at"], entry["run"])
            await redis.eval(HISTORY_SCRIPT, 1, key, stored, occurrence, limit, 60)  # type: ignore[arg-type]
            assert await blob_in(redis) == history_blob.blob_of(story[:limit])

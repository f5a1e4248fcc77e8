"""A history entry is stored compact and read back whole (app/store/history_format.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from arq.connections import ArqRedis

from app.core import scim
from app.store import history_blob, history_format, keys, run_rows
from app.store.records import Records

ENTERPRISE = f"{scim.ENTERPRISE}:department"
ELEVO = f"{scim.ELEVO}:workStartDate"
CREATION: dict[str, Any] = {
    "user": "416",
    "action": "create",
    "reason": "new in Lucca",
    "diff": {
        "externalId": {"old": None, "new": "416"},
        "userName": {"old": None, "new": "camille.martin@acme.example"},
        'emails[type eq "work"].value': {"old": None, "new": "camille.martin@acme.example"},
        ENTERPRISE: {"old": None, "new": "R&D"},
        ELEVO: {"old": None, "new": "2021-09-01"},
        scim.custom_field_path("site"): {"old": None, "new": "Lyon"},
        "active": {"old": None, "new": True},
    },
    "at": "2026-12-05T13:25:13.083Z",
    "run": "20261205T132513-abcdef",
    "written": True,
    "dry_run": False,
}
UPDATE: dict[str, Any] = {
    "user": "416",
    "action": "update",
    "reason": "changed in Lucca",
    "diff": {
        "title": {"old": "Engineer", "new": None},
        ENTERPRISE: {"old": "R&D", "new": "Sales"},
        "name.givenName": {"old": None, "new": "Camille"},
    },
    "at": "2026-12-06T09:00:00.000Z",
    "run": None,
    "written": True,
    "dry_run": False,
}
SKIPPED: dict[str, Any] = {
    "user": "416",
    "action": "skipped",
    "reason": "excluded by the skip field",
    "diff": {},
    "at": "2026-12-06T02:00:00.000Z",
    "run": "20261206T020000-123456",
    "written": False,
    "dry_run": False,
    "error": "Elevo answered 500",
}


@pytest.mark.parametrize("entry", [CREATION, UPDATE, SKIPPED], ids=lambda e: e["action"])
def test_an_entry_reads_back_as_it_was_given(entry: dict[str, Any]) -> None:
    assert history_format.unpack(history_format.pack(entry), entry["user"]) == entry


def test_a_creation_is_stored_in_well_under_its_whole_size() -> None:
    whole = len(orjson.dumps(CREATION))
    assert len(history_format.pack(CREATION)) < 0.6 * whole


def test_every_path_reads_back_whatever_its_mark() -> None:
    paths = [
        "externalId", scim.USER_NAME, scim.GIVEN_NAME, scim.FAMILY_NAME, scim.TITLE,
        scim.ACTIVE, scim.WORK_EMAIL, scim.EMPLOYEE_NUMBER, scim.DEPARTMENT, scim.MANAGER,
        scim.WORK_START_DATE, scim.SYNC_SOURCE, scim.custom_field_path("~x"),
        f"{scim.ENTERPRISE}:organization", f"{scim.CORE_USER}:nickName", "~not-a-path",
    ]  # fmt: skip
    entry = CREATION | {"diff": {p: {"old": None, "new": n} for n, p in enumerate(paths)}}
    assert history_format.unpack(history_format.pack(entry), "416") == entry


def test_an_entry_stored_whole_by_an_earlier_version_reads_as_it_was() -> None:
    assert history_format.unpack(orjson.dumps(CREATION), "416") == CREATION


async def test_every_reader_of_a_history_sees_whole_entries(redis: ArqRedis) -> None:
    records = Records(redis, 86400)  # the two entries are 13 hours apart: both kept
    await records.add("acme", "416", CREATION, failing=None)
    await records.add("acme", "416", SKIPPED, failing=True)
    assert await records.history("acme", "416") == [SKIPPED, CREATION]
    assert await records.user_errors("acme") == {"416": SKIPPED}
    assert await run_rows.entries_of_run(redis, "acme", CREATION["run"], ["416"]) == {
        "416": CREATION
    }
    assert await run_rows.latest_entries(redis, "acme", ["416"]) == {"416": SKIPPED}
    found = await run_rows.latest_entries_of(redis, "acme", ["416"], {"create"})
    assert found == {"416": CREATION}
    # What Redis holds names neither the user nor the extension schemas' URNs.
    blob = await redis.get(keys.history("acme", "416"))
    stored = b"".join(history_blob.inflate(frame.body) for frame in history_blob.frames(blob))
    assert b'"user"' not in stored
    assert scim.ENTERPRISE.encode() not in stored

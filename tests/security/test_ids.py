"""Ids are parsed once, at the edge (issue 12, point 6): ASCII digits only, at most 18
significant ones, leading zeros dropped; anything else is a 400 naming it (HTTP) or a recorded
malformed event (webhook), never a 500."""

from __future__ import annotations

import orjson
import pytest

from app.store import keys
from tests.security.support import ACME_WEBHOOK, ADMIN, Served, signed_headers

HUGE = "9" * 4300  # int() of it raises in CPython: the 500 the issue found
NINETEEN = "1" * 19
EIGHTEEN = "9" * 18
NOT_IDS = [HUGE, NINETEEN, "0", "00", "-1", "1e3", "١٢", "²", " 1", "abc"]


@pytest.mark.parametrize("user_id", NOT_IDS, ids=lambda text: f"{text[:12]}({len(text)})")
async def test_a_user_history_of_a_bad_id_is_a_400(served: Served, user_id: str) -> None:
    response = await served.client.get(f"/sync/acme/users/{user_id}", headers=ADMIN)
    assert response.status_code == 400
    assert response.json() == {
        "error": "bad_user",
        "detail": "user id must be a positive integer of at most 18 digits",
    }


async def test_a_user_history_is_read_under_the_canonical_id(served: Served) -> None:
    for path, user in ((EIGHTEEN, EIGHTEEN), ("0" * 40 + "416", "416")):
        response = await served.client.get(f"/sync/acme/users/{path}", headers=ADMIN)
        assert (response.status_code, response.json()["user"]) == (200, user)


@pytest.mark.parametrize(
    "users",
    [[HUGE], [NINETEEN], [int(NINETEEN)], ["416", NINETEEN], [0], ["0"], [1.5], [True]],
    ids=[
        "4300-digits",
        "19-digits",
        "19-digit-number",
        "second",
        "zero",
        "zero-text",
        "float",
        "bool",
    ],
)
async def test_a_sync_of_a_bad_user_id_is_a_400_naming_it(
    served: Served, users: list[object]
) -> None:
    body = orjson.dumps({"users": users})
    response = await served.client.post("/sync/acme", content=body, headers=ADMIN)
    assert response.status_code == 400
    error = response.json()
    assert error["error"] == "invalid_body"
    assert f"$.users[{len(users) - 1}]" in error["detail"]
    assert await served.resources.redis.zcard(keys.queue()) == 0


async def test_a_number_json_cannot_hold_is_a_400(served: Served) -> None:
    response = await served.client.post(
        "/sync/acme", content=b'{"users": [' + HUGE.encode() + b"]}", headers=ADMIN
    )
    assert (response.status_code, response.json()["error"]) == (400, "bad_json")


async def test_ids_are_canonical_when_a_sync_starts(served: Served) -> None:
    body = orjson.dumps({"users": ["0416", 416, "000" + EIGHTEEN], "dry_run": True})
    response = await served.client.post("/sync/acme", content=body, headers=ADMIN)
    assert response.status_code == 202
    run = await served.client.get(f"/sync/acme/runs/{response.json()['run']}", headers=ADMIN)
    assert run.json()["expected"] == 2  # "0416" and 416 are one user


async def test_a_run_id_of_4300_characters_is_unknown(served: Served) -> None:
    response = await served.client.get(f"/sync/acme/runs/{HUGE}", headers=ADMIN)
    assert (response.status_code, response.json()["error"]) == (404, "unknown_run")


@pytest.mark.parametrize(
    ("topic", "data"),
    [
        ("employee.updated", {"id": HUGE}),
        ("employee.updated", {"id": NINETEEN}),
        ("employee.updated", {"id": int(NINETEEN)}),
        ("employment.updated", {"employee": {"id": HUGE}}),
        ("department.updated", {"id": HUGE}),
    ],
    ids=["employee", "employee-19", "employee-number", "employment", "department"],
)
async def test_a_webhook_naming_a_bad_id_is_a_recorded_malformed_event(
    served: Served, topic: str, data: dict[str, object]
) -> None:
    body = orjson.dumps({"id": "evt-1", "topic": topic, "data": data})
    response = await served.client.post(
        "/webhooks/lucca/acme", content=body, headers=signed_headers(ACME_WEBHOOK, body)
    )
    assert response.status_code == 202
    assert response.json()["status"] == "malformed"
    run = await served.client.get(f"/sync/acme/runs/{response.json()['run']}", headers=ADMIN)
    assert (run.json()["mode"], run.json()["trigger"]) == ("changes", f"webhook:malformed:{topic}")
    redis = served.resources.redis
    assert not [key async for key in redis.scan_iter(match="t:acme:gen:*")]

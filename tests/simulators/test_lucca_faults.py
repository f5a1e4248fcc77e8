"""Authentication, the rate limit, injected faults, truncation, permission loss, the request log."""

from __future__ import annotations

import httpx
import pytest

from simulators.lucca import Company, ManualClock
from simulators.lucca.faults import Faults, most_in_any_window

USERS = "/tiny/api/v3/users"


@pytest.mark.parametrize(
    "header",
    [None, "lucca application=wrong", "Bearer tiny-key", "lucca application=acme-key",
     "lucca tiny-key"],
)  # fmt: skip
async def test_bad_or_missing_key_is_401_json(client, header):
    headers = {} if header is None else {"Authorization": header}
    response = await client.get(USERS, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.json()["Status"] == 401


async def test_unknown_subdomain_is_404(client, tiny_auth):
    response = await client.get("/nobody/api/v3/users", headers=tiny_auth)
    assert response.status_code == 404
    assert response.json()["Status"] == 404


async def test_rate_limit_answers_429_with_retry_after_then_recovers(
    client, tiny: Company, clock: ManualClock, tiny_auth
):
    assert tiny.limiter.limit == 50
    tiny.limiter.limit = 3
    statuses = []
    for _ in range(3):
        statuses.append((await client.get(USERS, headers=tiny_auth)).status_code)
        clock.advance(10)
    over = await client.get(USERS, headers=tiny_auth)
    assert statuses == [200, 200, 200]
    assert over.status_code == 429
    # The first request was 30 s ago: it leaves the window in 30 s.
    assert over.headers["Retry-After"] == "30"
    clock.advance(30)
    assert (await client.get(USERS, headers=tiny_auth)).status_code == 200


async def test_rate_limit_is_per_subdomain_and_counts_every_request(
    client, tiny: Company, acme_auth, tiny_auth
):
    tiny.limiter.limit = 2
    await client.get(USERS)  # a 401 still uses the budget
    await client.get(USERS, headers=tiny_auth)
    assert (await client.get(USERS, headers=tiny_auth)).status_code == 429
    assert (await client.get("/acme/api/v3/users", headers=acme_auth)).status_code == 200


async def test_rate_limit_can_be_disabled(client, tiny: Company, tiny_auth):
    tiny.limiter.limit = None
    statuses = {(await client.get(USERS, headers=tiny_auth)).status_code for _ in range(80)}
    assert statuses == {200}


async def test_forced_statuses_are_served_in_order(client, tiny: Company, tiny_auth):
    tiny.faults.force(429, 2, retry_after=7)
    tiny.faults.force(503)
    tiny.faults.force(401)
    responses = [await client.get(USERS, headers=tiny_auth) for _ in range(5)]
    assert [r.status_code for r in responses] == [429, 429, 503, 401, 200]
    assert responses[0].headers["Retry-After"] == "7"
    assert "Retry-After" not in responses[2].headers


async def test_error_rate_is_seeded(client, tiny: Company, tiny_auth):
    async def run() -> list[int]:
        tiny.faults.set_error_rate(0.5, seed=42)
        return [(await client.get(USERS, headers=tiny_auth)).status_code for _ in range(40)]

    tiny.limiter.limit = None
    first, second = await run(), await run()
    assert first == second
    assert set(first) == {200, 500}
    assert 8 <= first.count(500) <= 32
    tiny.faults.clear()
    assert {(await client.get(USERS, headers=tiny_auth)).status_code for _ in range(10)} == {200}


async def test_latency_is_added_and_past_five_seconds_is_408(
    client, tiny: Company, clock: ManualClock, tiny_auth
):
    tiny.faults.latency = 0.25
    assert (await client.get(USERS, headers=tiny_auth)).status_code == 200
    tiny.faults.latency = 6.0
    assert (await client.get(USERS, headers=tiny_auth)).status_code == 408
    assert clock.slept == [0.25, 5.0]


async def test_truncation_cuts_listings_but_not_fetches_by_id(client, acme: Company, acme_auth):
    acme.faults.truncate_to = 50
    ids = [u["id"] for u in acme.users()]
    pages = []
    for offset in (0, 40):
        response = await client.get(
            "/acme/api/v3/users",
            params={"paging": f"{offset},40", "formerEmployees": "true"},
            headers=acme_auth,
        )
        pages.append([u["id"] for u in response.json()["data"]["items"]])
    assert pages == [ids[:40], ids[40:50]]
    beyond = await client.get(
        "/acme/api/v3/users",
        params={"id": str(ids[200]), "formerEmployees": "true"},
        headers=acme_auth,
    )
    assert [u["id"] for u in beyond.json()["data"]["items"]] == [ids[200]]


async def test_hidden_extension_section_disappears_for_everyone(client, acme: Company, acme_auth):
    async def extended() -> list[dict[str, object]]:
        response = await client.get(
            "/acme/api/v3/users",
            params={"fields": "id,extendedData", "formerEmployees": "true"},
            headers=acme_auth,
        )
        return [u["extendedData"] for u in response.json()["data"]["items"]]

    before = await extended()
    assert any("e_skip_elevo_sync" in e for e in before)  # most never had it set
    acme.hide_extension_section("e_skip_elevo_sync")
    after = await extended()
    assert len(after) == 300
    assert not any("e_skip_elevo_sync" in e for e in after)
    assert all("e_cost_center" in e for e in after)
    acme.show_extension_section("e_skip_elevo_sync")
    assert await extended() == before


async def test_edit_while_hidden_emits_and_shows_up_when_access_returns(
    client, tiny: Company, tiny_auth
):
    tiny.hide_extension_section("e_skip_elevo_sync")
    [event] = tiny.set_extension(416, "e_skip_elevo_sync", True)
    assert event["topic"] == "employee-extension.updated"
    assert "e_skip_elevo_sync" not in tiny.user(416)["extendedData"]
    tiny.show_extension_section("e_skip_elevo_sync")
    assert tiny.user(416)["extendedData"]["e_skip_elevo_sync"]["value"] is True


async def test_request_log_counts_kinds_params_and_statuses(
    client: httpx.AsyncClient, tiny: Company, tiny_auth
):
    await client.get(USERS, params={"paging": "0,10"}, headers=tiny_auth)
    await client.get(USERS, params={"id": "416,417"}, headers=tiny_auth)
    await client.get(USERS, params={"id": "416"})
    await client.get(f"{USERS}/416", headers=tiny_auth)
    log = tiny.requests
    assert (log.total, log.listings, log.by_id) == (4, 1, 3)
    assert dict(log.by_status) == {200: 3, 401: 1}
    assert [e.params for e in log.entries][:2] == [{"paging": "0,10"}, {"id": "416,417"}]
    assert log.entries[-1].path == "/tiny/api/v3/users/416"
    log.reset()
    assert (log.total, log.listings, log.by_id, len(log.entries)) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("arrivals", "most"),
    [([], 0), ([5.0], 1), ([0, 1, 2, 3], 3), ([0, 2.99, 3, 6], 2), ([0, 0, 0, 9], 3)],
)
def test_most_in_any_window_counts_as_lucca_would(arrivals: list[float], most: int) -> None:
    assert most_in_any_window(arrivals, 3.0) == most


def test_force_refuses_nonsense():
    faults = Faults()
    with pytest.raises(ValueError, match="HTTP status"):
        faults.force(42)
    with pytest.raises(ValueError, match="between 0 and 1"):
        faults.set_error_rate(1.5)

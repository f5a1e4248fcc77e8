"""The control API: another process creates companies, mutates them, sets faults, reads counts."""

from __future__ import annotations

import httpx

from simulators.lucca import Registry


async def create(client: httpx.AsyncClient, subdomain: str, **body: object) -> httpx.Response:
    return await client.put(f"/_control/{subdomain}", json={"api_key": "k", **body})


async def test_create_generates_a_company_served_at_once(client, registry: Registry):
    response = await create(client, "globex", size=40, seed=3, today="2025-03-03")
    assert response.status_code == 201
    assert response.json()["users"] == 40
    assert response.json()["rate_limit"] == 50
    assert "globex" in registry
    listed = await client.get(
        "/globex/api/v3/users",
        params={"formerEmployees": "true"},
        headers={"Authorization": "lucca application=k"},
    )
    assert len(listed.json()["data"]["items"]) == 40
    companies = (await client.get("/_control")).json()["companies"]
    assert {"subdomain": "globex", "users": 40} in companies


async def test_create_is_deterministic_and_replaces(client):
    await create(client, "globex", size=30, seed=5)
    first = (await client.get("/_control/globex/users")).json()["users"]
    await create(client, "globex", size=30, seed=5)
    again = (await client.get("/_control/globex/users")).json()["users"]
    assert [u["id"] for u in first] == [u["id"] for u in again]
    assert [u["mail"] for u in first] == [u["mail"] for u in again]


async def test_create_rejects_bad_bodies(client):
    assert (await client.put("/_control/x", json={"size": 3})).status_code == 400
    assert (await create(client, "x", colour="red")).status_code == 400
    assert (await create(client, "x", timezone="Mars/Olympus")).status_code == 400
    assert (await client.put("/_control/x", content=b"{nope")).status_code == 400


async def test_rate_limit_can_be_disabled_at_creation(client):
    response = await create(client, "free", size=5, rate_limit=None)
    assert response.json()["rate_limit"] is None


async def test_mutations_return_events_and_change_the_directory(client):
    response = await client.post(
        "/_control/tiny/mutations", json={"op": "set_contract", "user_id": 416, "end": "2025-03-31"}
    )
    assert response.status_code == 200
    [event] = response.json()["events"]
    assert event["topic"] == "employment.updated"
    assert event["data"]["end"] == {"date": "2025-03-31"}
    response = await client.post(
        "/_control/tiny/mutations", json={"op": "update", "user_id": 416, "firstName": "Jon"}
    )
    assert response.json()["events"][0]["data"]["givenName"] == "Jon"
    hired = await client.post(
        "/_control/tiny/mutations",
        json={"op": "hire", "first_name": "Zoé", "last_name": "Roux", "start": "2025-04-01",
              "department_id": 14, "manager_id": 416},
    )  # fmt: skip
    assert [e["topic"] for e in hired.json()["events"]] == [
        "employee.created",
        "employment.created",
        "job-position.created",
    ]
    dump = (await client.get("/_control/tiny/users")).json()
    john = next(u for u in dump["users"] if u["id"] == 416)
    assert (john["firstName"], john["dtContractEnd"]) == ("Jon", "2025-03-31T00:00:00")
    assert len(dump["users"]) == 4
    assert {d["id"] for d in dump["departments"]} == {13, 14}


async def test_hide_section_through_the_control_api(client):
    response = await client.post(
        "/_control/tiny/mutations", json={"op": "hide_extension_section", "code": "e_cost_center"}
    )
    assert response.json() == {"events": []}
    summary = (await client.get("/_control/tiny")).json()
    assert summary["hidden_sections"] == ["e_cost_center"]


async def test_mutation_errors(client):
    async def post(body: dict[str, object]) -> int:
        response: httpx.Response = await client.post("/_control/tiny/mutations", json=body)
        return response.status_code

    assert await post({"op": "drop_table"}) == 400
    assert await post({"op": "update", "user_id": 416, "salary": 1}) == 400
    assert await post({"op": "set_job", "user_id": 416, "colour": "red"}) == 400
    assert await post({"op": "set_contract", "user_id": 416, "end": "31/03/2025"}) == 400
    assert await post({"op": "delete", "user_id": 999}) == 404
    assert await post({"op": "set_job", "user_id": 416, "department_id": 99}) == 404
    assert (await client.get("/_control/nobody/users")).status_code == 404


async def test_faults_through_the_control_api(client, tiny_auth):
    response = await client.put(
        "/_control/tiny/faults",
        json={"force": [{"status": 429, "count": 2, "retry_after": 3}, {"status": 503}],
              "truncate_to": 1, "latency": 0.1},
    )  # fmt: skip
    assert response.json()["forced"] == [429, 429, 503]
    assert response.json()["truncate_to"] == 1
    statuses = [(await client.get("/tiny/api/v3/users", headers=tiny_auth)) for _ in range(4)]
    assert [r.status_code for r in statuses] == [429, 429, 503, 200]
    assert statuses[0].headers["Retry-After"] == "3"
    assert len(statuses[3].json()["data"]["items"]) == 1
    cleared = await client.delete("/_control/tiny/faults")
    assert cleared.json() == {
        "error_rate": 0.0,
        "latency": 0.0,
        "truncate_to": None,
        "forced": [],
        "rate_limit": 50,
    }
    assert (await client.put("/_control/tiny/faults", json={"force": 429})).status_code == 400
    assert (await client.put("/_control/tiny/faults", json={"error_rate": 2})).status_code == 400


async def test_rate_limit_through_the_control_api(client, tiny_auth):
    await client.put("/_control/tiny/faults", json={"rate_limit": 1})
    assert (await client.get("/tiny/api/v3/users", headers=tiny_auth)).status_code == 200
    assert (await client.get("/tiny/api/v3/users", headers=tiny_auth)).status_code == 429
    await client.delete("/_control/tiny/counters")  # also starts a fresh window
    assert (await client.get("/tiny/api/v3/users", headers=tiny_auth)).status_code == 200


async def test_counters_read_and_reset(client, tiny_auth):
    await client.get("/tiny/api/v3/users", params={"paging": "0,10"}, headers=tiny_auth)
    await client.get("/tiny/api/v3/users", params={"id": "416"}, headers=tiny_auth)
    counters = (await client.get("/_control/tiny/counters")).json()
    assert (counters["total"], counters["listings"], counters["by_id"]) == (2, 1, 1)
    assert counters["by_status"] == {"200": 2}
    first, second = counters["requests"]
    assert second == {
        "kind": "by_id",
        "path": "/tiny/api/v3/users",
        "params": {"id": "416"},
        "status": 200,
        "at": second["at"],
    }
    assert 0 <= second["at"] - first["at"] < 5  # arrival times, in monotonic seconds
    reset = (await client.delete("/_control/tiny/counters")).json()
    assert reset["total"] == 0
    assert reset["requests"] == []


async def test_delete_company(client, registry: Registry):
    assert (await client.delete("/_control/tiny")).status_code == 204
    assert "tiny" not in registry
    assert (await client.get("/tiny/api/v3/users")).status_code == 404
    assert (await client.post("/_control/acme/users")).status_code == 405


async def test_create_says_who_has_the_skip_field_and_a_mutation_hides_it(client):
    async def with_field(subdomain: str) -> int:
        users = (await client.get(f"/_control/{subdomain}/users")).json()["users"]
        return sum("e_skip_elevo_sync" in u["extendedData"] for u in users)

    await create(client, "some", size=40, seed=3)
    assert 0 < await with_field("some") < 20  # by default most have no field at all
    await create(client, "nobody", size=40, seed=3, skip_presence="nobody")
    assert await with_field("nobody") == 0
    await create(client, "everyone", size=40, seed=3, skip_presence="everyone")
    assert await with_field("everyone") == 40
    assert (await create(client, "x", skip_presence="most")).status_code == 400
    # The key loses the HR-file section: no item carries the field any more.
    lost = {"op": "hide_extension_section", "code": "e_skip_elevo_sync"}
    assert (await client.post("/_control/everyone/mutations", json=lost)).status_code == 200
    assert await with_field("everyone") == 0

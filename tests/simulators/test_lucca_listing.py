"""GET /{subdomain}/api/v3/users: projection, filters, paging, former employees, envelope."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from simulators.lucca import ManualClock

FIELDS = (
    "id,firstName,lastName,mail,login,jobTitle,employeeNumber,dtContractStart,dtContractEnd,"
    "modifiedAt,manager[id],department[id,name],legalEntity[name],extendedData"
)
USERS = "/tiny/api/v3/users"


async def items(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], **params: str
) -> list[dict[str, Any]]:
    response = await client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return list(body["data"]["items"])


async def test_bare_call_returns_only_id_name_url(client, tiny_auth):
    listed = await items(client, USERS, tiny_auth)
    assert listed == [
        {"id": 383, "name": "Roger Smith", "url": "https://tiny.ilucca.net/api/v3/users/383"},
        {"id": 416, "name": "John Doe", "url": "https://tiny.ilucca.net/api/v3/users/416"},
    ]


async def test_projection_picks_top_level_and_nested_keys(client, tiny_auth):
    [john] = await items(client, USERS, tiny_auth, fields=FIELDS, id="416")
    assert set(john) == {
        "id", "firstName", "lastName", "mail", "login", "jobTitle", "employeeNumber",
        "dtContractStart", "dtContractEnd", "modifiedAt", "manager", "department",
        "legalEntity", "extendedData",
    }  # fmt: skip
    assert john["manager"] == {"id": 383}
    assert john["department"] == {"id": 13, "name": "R&D"}
    assert john["legalEntity"] == {"name": "Tiny SAS"}
    assert john["dtContractStart"] == "2021-09-01T00:00:00"
    assert john["dtContractEnd"] is None
    assert john["modifiedAt"] == "2025-03-03T10:00:00.000"  # Paris time, no offset
    extended = john["extendedData"]
    assert extended["e_skip_elevo_sync"]["value"] is False
    assert extended["e_cost_center"]["value"] == "CC-12"
    assert isinstance(extended["e_cost_center"]["id"], int)


async def test_root_is_self_managed_and_computed_fields(client, tiny_auth):
    [roger] = await items(
        client, USERS, tiny_auth, fields="id,manager[id,name,url],managerId,displayName", id="383"
    )
    assert roger == {
        "id": 383,
        "manager": {
            "id": 383,
            "name": "Roger Smith",
            "url": "https://tiny.ilucca.net/api/v3/users/383",
        },
        "managerId": 383,
        "displayName": "Roger Smith",
    }


async def test_extended_data_can_be_narrowed_and_null_manager_stays_null(client, tiny, tiny_auth):
    tiny.set_job(416, manager_id=None)
    [john] = await items(
        client, USERS, tiny_auth, fields="id,manager[id],extendedData[e_cost_center]", id="416"
    )
    assert john["manager"] is None
    assert list(john["extendedData"]) == ["e_cost_center"]


@pytest.mark.parametrize(
    "fields",
    ["id,nope", "id,manager[id", "id,manager]", "id,,firstName", "manager.id", "firstName[x]",
     "manager[id,salary]"],
)  # fmt: skip
async def test_bad_projection_is_a_400_with_a_json_body(client, tiny_auth, fields):
    response = await client.get(USERS, params={"fields": fields}, headers=tiny_auth)
    assert response.status_code == 400
    assert response.json()["Status"] == 400
    assert response.json()["Message"]


async def test_id_filter_returns_many_sorted_and_skips_unknown_ids(client, tiny_auth):
    listed = await items(client, USERS, tiny_auth, id="999,416,383", formerEmployees="true")
    assert [u["id"] for u in listed] == [383, 416]


async def test_former_employees_only_with_the_flag(client, tiny_auth):
    assert [u["id"] for u in await items(client, USERS, tiny_auth, id="417")] == []
    listed = await items(client, USERS, tiny_auth, id="417", formerEmployees="true")
    assert [u["id"] for u in listed] == [417]
    everyone = await items(client, USERS, tiny_auth, formerEmployees="true")
    assert [u["id"] for u in everyone] == [383, 416, 417]


async def test_contract_ending_today_is_still_listed_and_future_hires_are(client, tiny, tiny_auth):
    tiny.set_contract(416, end=date(2025, 3, 3))
    tiny.hire("Nina", "Later", start=date(2025, 6, 1), department_id=13, user_id=500)
    listed = await items(client, USERS, tiny_auth)
    assert [u["id"] for u in listed] == [383, 416, 500]


async def test_generated_listing_leaves_out_exactly_the_departed(client, acme, acme_auth):
    today = acme.today().isoformat()
    departed = {
        u["id"] for u in acme.users() if u["dtContractEnd"] and u["dtContractEnd"][:10] < today
    }
    future = {u["id"] for u in acme.users() if u["dtContractStart"][:10] > today}
    assert departed
    assert future
    listed = {u["id"] for u in await items(client, "/acme/api/v3/users", acme_auth)}
    assert listed == {u["id"] for u in acme.users()} - departed
    assert future <= listed


async def test_department_filter(client, tiny_auth):
    listed = await items(client, USERS, tiny_auth, departmentId="14", formerEmployees="true")
    assert [u["id"] for u in listed] == [417]
    listed = await items(client, USERS, tiny_auth, departmentId="13,14")
    assert [u["id"] for u in listed] == [383, 416]


async def test_modified_since_is_inclusive_local_time(client, tiny, clock: ManualClock, tiny_auth):
    clock.advance(hours=2)
    tiny.update(416, lastName="Dupont")
    since = await items(client, USERS, tiny_auth, modifiedAt="since,2025-03-03T12:00:00")
    assert [u["id"] for u in since] == [416]
    exact = await items(client, USERS, tiny_auth, modifiedAt="since,2025-03-03T10:00:00")
    assert [u["id"] for u in exact] == [383, 416]
    later = await items(client, USERS, tiny_auth, modifiedAt="since,2025-03-03T12:00:00.001")
    assert later == []
    until = await items(client, USERS, tiny_auth, modifiedAt="until,2025-03-03T11:00:00")
    assert [u["id"] for u in until] == [383]
    between = await items(
        client, USERS, tiny_auth, modifiedAt="between,2025-03-03T11:00:00,2025-03-03T13:00:00"
    )
    assert [u["id"] for u in between] == [416]


async def test_mail_login_and_legal_entity_filters(client, tiny, tiny_auth):
    tiny.add_legal_entity("Tiny Belgique SA", 2)
    tiny.hire("Lou", "Other", start=date(2024, 1, 1), department_id=13, legal_entity_id=2,
              user_id=600, mail="john.doe@tiny.example", login="lother")  # fmt: skip
    by_mail = await items(client, USERS, tiny_auth, mail="john.doe@tiny.example")
    assert [u["id"] for u in by_mail] == [416, 600]  # a shared mailbox
    by_login = await items(client, USERS, tiny_auth, login="agone", formerEmployees="true")
    assert [u["id"] for u in by_login] == [417]
    by_entity = await items(client, USERS, tiny_auth, legalEntityId="2", fields="id,legalEntityId")
    assert by_entity == [{"id": 600, "legalEntityId": 2}]


@pytest.mark.parametrize(
    "params",
    [
        {"modifiedAt": "since,2025-03-03T12:00:00Z"},
        {"modifiedAt": "after,2025-03-03"},
        {"id": "416,abc"},
        {"formerEmployees": "yes"},
        {"paging": "0,1001"},
        {"paging": "-1,10"},
        {"paging": "10"},
        {"salary": "1000"},
    ],
)
async def test_bad_parameters_are_400(client, tiny_auth, params):
    response = await client.get(USERS, params=params, headers=tiny_auth)
    assert response.status_code == 400
    assert set(response.json()) == {"Status", "Message"}


async def test_paging_walks_every_user_by_id_and_ends_on_a_short_page(client, acme, acme_auth):
    seen: list[int] = []
    offset, sizes = 0, []
    while True:
        page = await items(
            client, "/acme/api/v3/users", acme_auth, paging=f"{offset},128", formerEmployees="true"
        )
        sizes.append(len(page))
        seen.extend(u["id"] for u in page)
        if len(page) < 128:
            break
        offset += 128
    assert sizes == [128, 128, 44]  # 300 users
    assert seen == sorted(u["id"] for u in acme.users())


async def test_default_page_is_a_thousand(client, acme, acme_auth):
    listed = await items(client, "/acme/api/v3/users", acme_auth, formerEmployees="true")
    assert len(listed) == len(acme) == 300
    page = await items(
        client, "/acme/api/v3/users", acme_auth, paging="250,100", formerEmployees="true"
    )
    assert [u["id"] for u in page] == [u["id"] for u in acme.users()[250:]]


async def test_envelope_header(client, tiny_auth):
    response = await client.get(USERS, headers=tiny_auth)
    assert response.headers["content-type"] == "application/json"
    header = response.json()["header"]
    assert header == {"generated": "2025-03-03T10:00:00.000", "principal": "Elevo sync"}


async def test_single_user_path(client, tiny_auth):
    response = await client.get(f"{USERS}/416", params={"fields": "id,lastName"}, headers=tiny_auth)
    assert response.json()["data"] == {"id": 416, "lastName": "Doe"}
    missing = await client.get(f"{USERS}/999", headers=tiny_auth)
    assert missing.status_code == 500
    assert missing.json()["Message"] == "User Not Found"


async def test_id_fetch_does_not_scan_the_directory(client, acme, acme_auth, monkeypatch):
    def no_scan() -> list[dict[str, Any]]:
        raise AssertionError("a fetch by id must not walk every user")

    wanted = [u["id"] for u in acme.users()[10:13]]
    monkeypatch.setattr(acme, "users", no_scan)
    listed = await items(
        client,
        "/acme/api/v3/users",
        acme_auth,
        id=",".join(map(str, wanted)),
        formerEmployees="true",
    )
    assert [u["id"] for u in listed] == wanted


async def test_deleted_user_is_gone_even_with_former_employees(client, tiny, tiny_auth):
    tiny.delete(416)
    listed = await items(client, USERS, tiny_auth, id="416", formerEmployees="true")
    assert listed == []
    everyone = await items(client, USERS, tiny_auth, formerEmployees="true")
    assert [u["id"] for u in everyone] == [383, 417]


async def test_listing_reflects_changes_between_pages(client, tiny, tiny_auth):
    assert len(await items(client, USERS, tiny_auth)) == 2
    tiny.set_contract(416, end=date(2025, 3, 1))  # the listing cache must see the departure
    assert [u["id"] for u in await items(client, USERS, tiny_auth)] == [383]

"""Each mutation of a company: what it changes in v3, and the webhook events Lucca would send."""

from __future__ import annotations

from datetime import date

import pytest

from simulators.lucca import Company, ManualClock, UnknownEntity
from simulators.lucca.webhooks import confirmation_event, leave_created_event, ping_event

ENVELOPE = {"id", "type", "url", "apiVersion", "topic", "occurredAt", "source", "data"}


def check_envelope(
    event: dict[str, object], topic: str, at: str = "2025-03-03T09:00:00.000Z"
) -> None:
    expected = ENVELOPE | ({"previousAttributes"} if topic.endswith(".updated") else set())
    assert set(event) == expected
    assert event["topic"] == topic
    assert event["type"] == "event"
    assert event["apiVersion"] == "2024-11-01"
    assert event["source"] == "https://tiny.ilucca.net"
    assert event["url"] == f"https://tiny.ilucca.net/lucca-api/events/{event['id']}"
    assert event["occurredAt"] == at


def test_hire_emits_employee_employment_and_job_position(tiny: Company):
    events = tiny.hire(
        "Léa", "Martin", start=date(2025, 4, 1), department_id=14, manager_id=416,
        job_title="Comptable", mail="lea.martin@tiny.example", employee_number="00099",
    )  # fmt: skip
    assert [e["topic"] for e in events] == [
        "employee.created",
        "employment.created",
        "job-position.created",
    ]
    for event in events:
        check_envelope(event, event["topic"])
    employee, employment, position = (e["data"] for e in events)
    assert employee["id"] == "418"  # the next id, as a string
    assert employee["type"] == "employee"
    assert (employee["givenName"], employee["familyName"]) == ("Léa", "Martin")
    assert employee["email"] == "lea.martin@tiny.example"
    assert employee["employeeNumber"] == "00099"
    assert employee["status"] == "upcoming"
    assert employment["employee"]["id"] == "418"
    assert employment["start"] == {"date": "2025-04-01"}
    assert employment["end"] is None
    assert employment["id"] == employee["applicableEmployment"]["id"]
    assert position["employee"]["id"] == "418"
    assert position["manager"]["id"] == "416"
    assert position["department"]["id"] == "14"
    assert position["jobTitle"] == "Comptable"
    user = tiny.user(418)
    assert user["manager"]["id"] == 416
    assert user["extendedData"]["e_skip_elevo_sync"]["value"] is False


def test_v5_has_no_self_manager(tiny: Company):
    events = tiny.set_job(383, job_title="Président")
    assert events[0]["data"]["manager"] is None
    assert tiny.user(383)["manager"]["id"] == 383


def test_update_emits_employee_updated_with_previous_values(tiny: Company, clock: ManualClock):
    clock.advance(minutes=5)
    [event] = tiny.update(416, lastName="Durand", mail="john.durand@tiny.example", login="jdu")
    check_envelope(event, "employee.updated", at="2025-03-03T09:05:00.000Z")
    assert event["previousAttributes"] == {
        "familyName": "Doe",
        "email": "john.doe@tiny.example",
        "login": "jdoe",
    }
    assert event["data"]["familyName"] == "Durand"
    assert event["data"]["status"] == "active"
    user = tiny.user(416)
    assert (user["lastName"], user["mail"], user["login"]) == (
        "Durand",
        "john.durand@tiny.example",
        "jdu",
    )
    assert user["modifiedAt"] == "2025-03-03T10:05:00.000"


def test_update_without_change_emits_nothing_and_keeps_modified_at(tiny: Company, clock):
    clock.advance(minutes=5)
    assert tiny.update(416, firstName="John") == []
    assert tiny.user(416)["modifiedAt"] == "2025-03-03T10:00:00.000"
    with pytest.raises(ValueError, match="update takes"):
        tiny.update(416, jobTitle="CTO")


def test_renaming_a_manager_renames_the_reference_in_reports(tiny: Company, clock):
    clock.advance(minutes=1)
    tiny.update(383, firstName="Rog")
    assert tiny.user(416)["manager"]["name"] == "Rog Smith"
    assert tiny.user(416)["modifiedAt"] == "2025-03-03T10:00:00.000"


def test_set_job_emits_job_position_updated(tiny: Company):
    tiny.hire("Eve", "Boss", start=date(2020, 1, 1), department_id=14, user_id=500)
    [event] = tiny.set_job(416, manager_id=500, department_id=14, job_title="Lead")
    check_envelope(event, "job-position.updated")
    data = event["data"]
    assert data["employee"]["id"] == "416"
    assert data["manager"]["id"] == "500"
    assert data["department"]["id"] == "14"
    assert data["jobTitle"] == "Lead"
    assert sorted(data["updatedAttributes"]) == ["department", "jobTitle", "manager"]
    previous = event["previousAttributes"]
    assert previous["jobTitle"] == "Developer"
    assert previous["manager"]["id"] == "383"
    assert previous["department"]["id"] == "13"
    user = tiny.user(416)
    assert user["manager"] == {
        "id": 500,
        "name": "Eve Boss",
        "url": "https://tiny.ilucca.net/api/v3/users/500",
    }
    assert user["department"]["name"] == "Finance"
    assert user["jobTitle"] == "Lead"


def test_set_job_to_no_manager(tiny: Company):
    [event] = tiny.set_job(416, manager_id=None)
    assert event["data"]["manager"] is None
    assert tiny.user(416)["manager"] is None
    assert tiny.set_job(416, manager_id=None) == []
    with pytest.raises(UnknownEntity):
        tiny.set_job(416, manager_id=999)
    with pytest.raises(UnknownEntity):
        tiny.set_job(416, department_id=99)


def test_departure_is_an_end_date_on_the_employment(tiny: Company):
    [event] = tiny.set_contract(416, end=date(2025, 2, 28))
    check_envelope(event, "employment.updated")
    data = event["data"]
    assert data["employee"]["id"] == "416"
    assert data["start"] == {"date": "2021-09-01"}
    assert data["end"] == {"date": "2025-02-28"}
    assert data["status"] == "deactivated"
    assert event["previousAttributes"] == {"end": None}
    assert tiny.user(416)["dtContractEnd"] == "2025-02-28T00:00:00"
    [undo] = tiny.set_contract(416, end=None)
    assert undo["data"]["end"] is None
    assert undo["previousAttributes"] == {"end": {"date": "2025-02-28"}}


def test_contract_start_change_and_invalid_period(tiny: Company):
    [event] = tiny.set_contract(416, start=date(2021, 10, 1))
    assert event["previousAttributes"] == {"start": {"date": "2021-09-01"}}
    with pytest.raises(ValueError, match="cannot end"):
        tiny.set_contract(416, end=date(2020, 1, 1))


def test_set_extension_created_then_updated(tiny: Company):
    [created] = tiny.set_extension(416, "e_remote", True)
    check_envelope(created, "employee-extension.created")
    data = created["data"]
    assert data["employee"]["id"] == "416"
    assert data["extensionDefinition"]["id"] == "e_remote"
    assert data["value"] is True
    [updated] = tiny.set_extension(416, "e_remote", False)
    check_envelope(updated, "employee-extension.updated")
    assert updated["previousAttributes"] == {"value": True}
    stored = tiny.user(416)["extendedData"]["e_remote"]
    assert stored["value"] is False
    assert str(stored["id"]) == data["id"]  # an edit keeps the value's id
    assert tiny.set_extension(416, "e_remote", False) == []


def test_exclusion_checkbox_bare_and_multi_valued_fields(tiny: Company):
    [event] = tiny.set_extension(416, "e_skip_elevo_sync", True, bare=True)
    assert event["topic"] == "employee-extension.updated"
    assert event["data"]["value"] is True
    assert tiny.user(416)["extendedData"]["e_skip_elevo_sync"] is True
    [langs] = tiny.set_extension(416, "e_languages", ["Français", "Anglais"])
    assert langs["data"]["value"] == ["Français", "Anglais"]
    stored = tiny.user(416)["extendedData"]["e_languages"]
    assert [v["value"] for v in stored] == ["Français", "Anglais"]
    assert all(isinstance(v["id"], int) for v in stored)


def test_rename_department_touches_every_member(tiny: Company, clock: ManualClock):
    clock.advance(hours=1)
    [event] = tiny.rename_department(13, "Engineering")
    check_envelope(event, "department.updated", at="2025-03-03T10:00:00.000Z")
    assert event["data"] == {"id": "13", "type": "department", "name": "Engineering"}
    assert event["previousAttributes"] == {"name": "R&D"}
    for member in (383, 416):
        assert tiny.user(member)["department"]["name"] == "Engineering"
        assert tiny.user(member)["modifiedAt"] == "2025-03-03T11:00:00.000"
    assert tiny.user(417)["modifiedAt"] == "2025-03-03T10:00:00.000"


def test_delete_emits_employee_deleted_and_leaves_reports_dangling(tiny: Company):
    [event] = tiny.delete(383)
    check_envelope(event, "employee.deleted")
    assert event["data"]["id"] == "383"
    assert 383 not in tiny
    assert tiny.user(416)["manager"]["id"] == 383  # the sync must cope with a gone manager
    with pytest.raises(UnknownEntity):
        tiny.delete(383)


def test_event_ids_are_unique(tiny: Company):
    events = [e for n in range(20) for e in tiny.set_extension(416, "e_cost_center", f"CC-{n}")]
    assert len({e["id"] for e in events}) == 20


def test_activation_test_and_irrelevant_events(clock: ManualClock):
    for event, topic in (
        (confirmation_event("tiny", clock=clock), "confirmation"),
        (ping_event("tiny", clock=clock), "ping"),
        (leave_created_event("tiny", employee_id=416, clock=clock), "leave.created"),
    ):
        check_envelope(event, topic)
    leave = leave_created_event("tiny", employee_id=416, clock=clock)
    assert leave["data"]["employee"]["id"] == "416"

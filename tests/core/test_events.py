"""Which employees a Lucca webhook event concerns (lucca/README.md, "Change notifications")."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.events import Notice, NoticeKind, notice_of
from tests.factories import LUCCA_ID, lucca_ref, make_event

EMPLOYEE = lucca_ref("employee", LUCCA_ID)
VERBS = ["created", "updated", "deleted"]


def _employee_data() -> dict[str, Any]:
    return {**EMPLOYEE, "givenName": "Camille", "familyName": "Martin", "status": "active"}


def _data_about_employee(kind: str) -> dict[str, Any]:
    """`data` of an employment, job position or HR-file extension of employee 416."""
    return {**lucca_ref(kind, 74), "employee": EMPLOYEE, "status": "active"}


@pytest.mark.parametrize("verb", VERBS)
def test_an_employee_event_concerns_data_id(verb: str) -> None:
    topic = f"employee.{verb}"

    assert notice_of(make_event(topic, _employee_data())) == Notice(
        NoticeKind.USERS, topic, user_ids=(LUCCA_ID,)
    )


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("kind", ["employment", "job-position", "employee-extension"])
def test_an_event_about_an_employees_resource_concerns_data_employee_id(
    kind: str, verb: str
) -> None:
    topic = f"{kind}.{verb}"
    data = _data_about_employee(kind)

    notice = notice_of(make_event(topic, data))

    assert notice == Notice(NoticeKind.USERS, topic, user_ids=(LUCCA_ID,))
    assert data["id"] != LUCCA_ID  # the resource's own id is not the employee's


def test_an_extension_event_names_the_employee_not_the_field() -> None:
    data = {
        **lucca_ref("employee-extension", "416-e_skip_elevo_sync"),
        "employee": EMPLOYEE,
        "extensionDefinition": {"id": "e_skip_elevo_sync"},
        "value": True,
    }

    assert notice_of(make_event("employee-extension.updated", data)).user_ids == (LUCCA_ID,)


@pytest.mark.parametrize("employee_id", [416, "416"])
def test_an_id_may_be_a_number_or_a_string(employee_id: object) -> None:
    notice = notice_of(make_event("employee.updated", {"id": employee_id}))

    assert notice.user_ids == ("416",)


def test_a_department_rename_fans_out_to_the_department() -> None:
    data = {"id": "13", "type": "department", "name": "Recherche"}

    assert notice_of(make_event("department.updated", data)) == Notice(
        NoticeKind.DEPARTMENT, "department.updated", department_id="13"
    )


@pytest.mark.parametrize("topic", ["confirmation", "ping"])
def test_activation_events_ask_for_nothing(topic: str) -> None:
    notice = notice_of(make_event(topic, lucca_ref("webhook-endpoint", 1)))

    assert notice.kind is NoticeKind.ACTIVATION
    assert notice.user_ids == ()


def test_activation_needs_no_data() -> None:
    assert notice_of({"topic": "confirmation"}).kind is NoticeKind.ACTIVATION


@pytest.mark.parametrize("topic", ["leave.created", "leave.updated", "department.created"])
def test_topics_that_touch_no_synced_field_are_ignored(topic: str) -> None:
    data = {**lucca_ref("leave", "416-2025-03-14"), "employee": EMPLOYEE}

    notice = notice_of(make_event(topic, data))

    assert notice.kind is NoticeKind.IGNORED
    assert notice.user_ids == ()


@pytest.mark.parametrize(
    ("topic", "data"),
    [
        ("employee.updated", {"type": "employee"}),
        ("employee.updated", {"id": None}),
        ("employee.updated", {"id": "abc"}),
        ("employee.updated", {"id": "-416"}),
        ("employee.updated", {"id": 0}),
        ("employee.updated", {"id": True}),
        ("employee.updated", {"id": 416.0}),
        ("employee.updated", None),
        ("employee.updated", "416"),
        ("employee.updated", [{"id": 416}]),
        ("employment.created", {"id": "4561"}),
        ("employment.created", {"id": "4561", "employee": None}),
        ("employment.created", {"id": "4561", "employee": "416"}),
        ("job-position.updated", {"employee": {"id": "Camille"}}),
        ("employee-extension.updated", {"employee": {}}),
        ("department.updated", {"name": "R&D"}),
        ("department.updated", {"id": "R&D"}),
        ("department.updated", []),
    ],
)
def test_a_relevant_topic_with_unexpected_data_is_malformed(topic: str, data: Any) -> None:
    notice = notice_of(make_event(topic, data))

    assert notice.kind is NoticeKind.MALFORMED
    assert notice.topic == topic
    assert notice.user_ids == ()
    assert notice.reason


@pytest.mark.parametrize("employee_id", ["0", "²", "٤١٦"])
def test_an_id_that_is_not_a_positive_decimal_number_is_malformed(employee_id: str) -> None:
    notice = notice_of(make_event("employee.updated", {"id": employee_id}))

    assert notice.kind is NoticeKind.MALFORMED


def test_a_missing_data_is_malformed() -> None:
    assert notice_of({"topic": "employee.updated"}).kind is NoticeKind.MALFORMED


@pytest.mark.parametrize("topic", [None, "", 42, ["employee.updated"]])
def test_an_event_without_a_topic_is_malformed(topic: Any) -> None:
    notice = notice_of(make_event("employee.updated", _employee_data(), topic=topic))

    assert notice.kind is NoticeKind.MALFORMED
    assert notice.reason == "event has no topic"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_topics = st.sampled_from(
    [
        "employee.updated",
        "employment.created",
        "job-position.deleted",
        "employee-extension.updated",
        "department.updated",
        "confirmation",
        "leave.created",
    ]
)
_ids = st.one_of(_json, st.integers(min_value=1).map(str), st.integers(min_value=1))


@given(
    topic=st.one_of(_topics, _json),
    data=st.one_of(
        _json,
        st.fixed_dictionaries({"id": _ids}),
        st.fixed_dictionaries({"employee": st.one_of(_json, st.fixed_dictionaries({"id": _ids}))}),
    ),
    extra=st.dictionaries(st.text(), _json, max_size=3),
)
def test_any_json_event_gives_a_notice_and_never_raises(topic: Any, data: Any, extra: Any) -> None:
    notice = notice_of({**extra, "topic": topic, "data": data})

    assert isinstance(notice, Notice)
    assert notice.kind in NoticeKind
    if notice.kind is NoticeKind.USERS:
        (user_id,) = notice.user_ids
        assert user_id.isdigit()
    if notice.kind is NoticeKind.DEPARTMENT:
        assert notice.department_id is not None
        assert notice.department_id.isdigit()


@given(st.dictionaries(st.sampled_from(["topic", "data", "id"]) | st.text(), _json))
def test_any_json_object_as_a_whole_event_never_raises(event: dict[str, Any]) -> None:
    assert notice_of(event).kind in NoticeKind

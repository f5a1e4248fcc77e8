"""Which employees a Lucca webhook event concerns (contracts/lucca/README.md). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.core.lucca_user import user_id_of


class NoticeKind(StrEnum):
    USERS = "users"  # resync these employees
    DEPARTMENT = "department"  # resync every member of a department
    ACTIVATION = "activation"  # confirmation / ping: nothing to do
    IGNORED = "ignored"  # a topic that touches no synced field
    MALFORMED = "malformed"  # a relevant topic whose data has an unexpected shape


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    topic: str
    user_ids: tuple[str, ...] = ()
    department_id: str | None = None
    reason: str = ""


# Topic prefix -> where the employee id sits in `data`.
_EMPLOYEE_AT_ID = ("employee.",)
_EMPLOYEE_AT_REF = ("employment.", "job-position.", "employee-extension.")
_DEPARTMENT_TOPICS = ("department.updated", "department.deleted")
_ACTIVATION_TOPICS = ("confirmation", "ping", "test.created")


def notice_of(event: Mapping[str, Any]) -> Notice:
    """Map one event to the work it asks for; never raises on a strange event."""
    topic = event.get("topic")
    if not isinstance(topic, str) or not topic:
        return Notice(NoticeKind.MALFORMED, "", reason="event has no topic")
    if topic in _ACTIVATION_TOPICS:
        return Notice(NoticeKind.ACTIVATION, topic)
    data = event.get("data")
    relevant = topic.startswith(_EMPLOYEE_AT_ID + _EMPLOYEE_AT_REF) or topic in _DEPARTMENT_TOPICS
    if not relevant:
        return Notice(NoticeKind.IGNORED, topic, reason="topic touches no synced field")
    if not isinstance(data, Mapping):
        return Notice(NoticeKind.MALFORMED, topic, reason="data is not an object")
    if topic in _DEPARTMENT_TOPICS:
        department_id = user_id_of(data)
        if department_id is None:
            return Notice(NoticeKind.MALFORMED, topic, reason="data.id is not a department id")
        return Notice(NoticeKind.DEPARTMENT, topic, department_id=department_id)
    holder = data if topic.startswith(_EMPLOYEE_AT_ID) else data.get("employee")
    user_id = user_id_of(holder) if isinstance(holder, Mapping) else None
    if user_id is None:
        where = "data.id" if topic.startswith(_EMPLOYEE_AT_ID) else "data.employee.id"
        return Notice(NoticeKind.MALFORMED, topic, reason=f"{where} is not an employee id")
    return Notice(NoticeKind.USERS, topic, user_ids=(user_id,))

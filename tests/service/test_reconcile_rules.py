"""The pure parts of a reconciliation: the safety guard, manager waves, userName owners."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.clients.lucca import LuccaBatch
from app.core.lucca_user import parse_user
from app.core.tenant import GuardConfig
from app.service.reconcile_finish import guard_holds
from app.service.reconcile_sync import manager_waves, user_name_owners
from tests.factories import make_lucca_item

GUARD = GuardConfig()  # more than 10% of active managed profiles and more than 5


@pytest.mark.parametrize(
    ("suspensions", "active", "holds"),
    [
        (0, 0, False),  # nothing to suspend: nothing to hold
        (5, 10, False),  # 50%, but not more than 5
        (6, 100, False),  # more than 5, but 6% only
        (6, 50, True),  # 12% and 6
        (11, 100, True),
        (10, 100, False),  # exactly 10%: not more than
    ],
)
def test_the_guard_needs_both_the_share_and_the_count(
    suspensions: int, active: int, holds: bool
) -> None:
    assert guard_holds(suspensions, active, GUARD, lucca_empty=False) is holds


def test_an_empty_lucca_holds_any_suspension() -> None:
    assert guard_holds(1, 1000, GUARD, lucca_empty=True)
    assert not guard_holds(0, 1000, GUARD, lucca_empty=True)


def test_thresholds_are_the_tenants() -> None:
    strict = GuardConfig(max_suspend_ratio=0.0, max_suspend_count=0)
    assert guard_holds(1, 1000, strict, lucca_empty=False)


def batch_of(managers: dict[int, int | None]) -> LuccaBatch:
    users = {}
    for user_id, manager in managers.items():
        item = make_lucca_item(id=user_id, manager=None if manager is None else {"id": manager})
        users[str(user_id)] = parse_user(item)
    return LuccaBatch(users=users, invalid={}, item_count=len(users))


def test_managers_come_before_the_people_they_manage() -> None:
    batch = batch_of({1: None, 2: 1, 3: 2, 4: 1, 5: 99})  # 99 is outside the batch
    waves = manager_waves(["5", "4", "3", "2", "1"], batch)
    assert waves == [["5", "1"], ["4", "2"], ["3"]]


def test_a_cycle_holds_nobody_back() -> None:
    batch = batch_of({1: 2, 2: 1, 3: 3})
    waves = manager_waves(["1", "2", "3"], batch)
    assert sorted(uid for wave in waves for uid in wave) == ["1", "2", "3"]


@given(st.dictionaries(st.integers(1, 30), st.one_of(st.none(), st.integers(1, 35)), min_size=1))
def test_waves_hold_everyone_once_and_put_managers_first(managers: dict[int, int | None]) -> None:
    batch = batch_of(managers)
    ids = [str(i) for i in managers]
    waves = manager_waves(ids, batch)
    flat = [uid for wave in waves for uid in wave]
    assert sorted(flat) == sorted(ids)
    level = {uid: n for n, wave in enumerate(waves) for uid in wave}
    for uid in ids:
        manager = batch.users[uid].manager_id
        on_a_cycle = _on_cycle(uid, batch)
        if manager in level and not on_a_cycle:
            assert level[manager] < level[uid]


def _on_cycle(uid: str, batch: LuccaBatch) -> bool:
    seen, current = set(), uid
    while current in batch.users and current not in seen:
        seen.add(current)
        current = batch.users[current].manager_id  # type: ignore[assignment]
    return current in seen


def test_a_shared_user_name_belongs_to_the_lowest_active_id() -> None:
    today = date(2026, 1, 1)
    items = [
        make_lucca_item(id=3, mail="shared@acme.test"),
        make_lucca_item(id=2, mail="SHARED@acme.test", dtContractEnd="2020-01-01T00:00:00"),
        make_lucca_item(id=5, mail="shared@acme.test"),
        make_lucca_item(id=4, mail="solo@acme.test"),
    ]
    users = {str(i["id"]): parse_user(i) for i in items}
    batch = LuccaBatch(users=users, invalid={}, item_count=4)
    owners = user_name_owners(batch, "e_skip_elevo_sync", today)
    assert owners == {"shared@acme.test": "3", "solo@acme.test": "4"}  # 2 left: not an owner

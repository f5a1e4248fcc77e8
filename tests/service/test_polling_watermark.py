"""The poll's watermark across the autumn clock change: Lucca's `modifiedAt` is a wall-clock time
without an offset, and on 2026-10-25 Paris lives 02:00-03:00 twice (CEST, then CET)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import orjson

from app.service.context import TenantContext
from app.service.polling import changed_user_ids, lucca_since, poll_changes
from app.service.resources import Resources
from app.store import keys, polling
from app.store.run_model import RunMode, Trigger, TriggerKind, draft_run
from tests.factories import TENANT, make_lucca_item
from tests.fakes import Upstreams

PARIS = ZoneInfo("Europe/Paris")
# 02:50 CEST (first pass), then 02:05 CET (second pass): 15 minutes apart.
FIRST_PASS = datetime(2026, 10, 25, 0, 50, tzinfo=UTC)
SECOND_PASS = datetime(2026, 10, 25, 1, 5, tzinfo=UTC)


def test_the_second_pass_of_the_repeated_hour_is_asked_for() -> None:
    since = lucca_since(FIRST_PASS, SECOND_PASS, PARIS)
    # 02:48 CEST is 01:48 at today's offset: everything since reads 01:48 or later.
    assert since == datetime(2026, 10, 25, 1, 48)


def test_outside_a_clock_change_the_overlap_is_two_minutes() -> None:
    assert lucca_since(SECOND_PASS, datetime(2026, 10, 25, 1, 20, tzinfo=UTC), PARIS) == (
        datetime(2026, 10, 25, 2, 3)
    )
    spring = lucca_since(
        datetime(2026, 3, 29, 0, 58, tzinfo=UTC), datetime(2026, 3, 29, 1, 5, tzinfo=UTC), PARIS
    )
    assert spring == datetime(2026, 3, 29, 1, 56)  # 01:56 CET: no hour comes twice in spring


def test_a_naive_watermark_of_an_earlier_version_is_the_tenants_wall_clock() -> None:
    naive = datetime(2026, 10, 25, 2, 50)  # ambiguous: taken as the first pass, the earlier
    assert lucca_since(naive, SECOND_PASS, PARIS) == datetime(2026, 10, 25, 1, 48)
    assert lucca_since(None, SECOND_PASS, PARIS) == datetime(2026, 10, 24, 2, 3)


class ModifiedSince:
    """Lucca's listing with its `modifiedAt=since,` filter, on wall-clock strings."""

    def __init__(self, *items: dict[str, object]) -> None:
        self.items = list(items)
        self.asked: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        since = request.url.params["modifiedAt"].removeprefix("since,")
        self.asked.append(since)
        items = [i for i in self.items if str(i["modifiedAt"]) >= since]
        return httpx.Response(200, content=orjson.dumps({"data": {"items": items}}))


def at(tenant_ctx: TenantContext, moment: datetime) -> TenantContext:
    return replace(tenant_ctx, clock=lambda: moment)


async def test_a_change_in_the_repeated_hour_is_polled_and_the_first_pass_not_twice(
    res: Resources, upstreams: Upstreams, tenant_ctx: TenantContext
) -> None:
    first = make_lucca_item(id=416, modifiedAt="2026-10-25T02:40:00.000")  # 02:40 CEST
    lucca = ModifiedSince(first)
    upstreams.lucca.script("GET", lucca)
    run_id = await _poll_run(res)
    assert await poll_changes(res, at(tenant_ctx, FIRST_PASS), run_id) == 1
    assert await polling.watermark(res.redis, TENANT) == FIRST_PASS

    # 02:03 CET: an hour later than 02:40 CEST, yet it reads earlier.
    second = make_lucca_item(id=417, modifiedAt="2026-10-25T02:03:00.000", mail="b@acme.test")
    lucca.items.append(second)
    upstreams.lucca.script("GET", lucca)
    changes = await changed_user_ids(res, at(tenant_ctx, SECOND_PASS), await _poll_run(res))

    assert lucca.asked[-1] == "2026-10-25T01:48:00"
    assert changes.user_ids == ["417"]  # 416 read again at the same modifiedAt: a duplicate
    assert changes.read == {"416": "2026-10-25T02:40:00", "417": "2026-10-25T02:03:00"}


async def test_a_user_changed_again_in_the_overlap_is_synced_again(
    res: Resources, upstreams: Upstreams, tenant_ctx: TenantContext
) -> None:
    await polling.set_watermark(res.redis, TENANT, SECOND_PASS, {"416": "2026-10-25T02:04:00"})
    lucca = ModifiedSince(make_lucca_item(id=416, modifiedAt="2026-10-25T02:04:30.000"))
    upstreams.lucca.script("GET", lucca)
    later = at(tenant_ctx, datetime(2026, 10, 25, 1, 6, tzinfo=UTC))
    changes = await changed_user_ids(res, later, await _poll_run(res))
    assert changes.user_ids == ["416"]
    assert await res.redis.hget(keys.poll_read(TENANT), "416") == b"2026-10-25T02:04:00"


async def _poll_run(res: Resources) -> str:
    """A poll's run: each keeps its own cursor and pinned start."""
    return await res.runs.create(
        TENANT, draft_run(mode=RunMode.CHANGES, trigger=Trigger(TriggerKind.POLL))
    )

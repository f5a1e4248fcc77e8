"""The release use case over fake upstreams: a failure keeps the tenant and says why, asking
again retries; a disconnecting tenant takes no webhook and no run."""

from __future__ import annotations

import orjson
import pytest

from app.core import scim
from app.service.errors import RunConflict
from app.service.notices import accept_notice
from app.service.release import release_count, release_page_step, start_release
from app.service.resources import Resources
from app.service.results import Defer, Done
from app.service.runs import FULL_RUN, start_run, status_document
from app.store.links import ProfileLinks
from app.store.run_model import RunState, Trigger, TriggerKind
from tests.factories import TENANT
from tests.fakes import Upstreams


@pytest.fixture
def profiles(upstreams: Upstreams) -> Upstreams:
    upstreams.elevo.add(id="p-1", externalId="1", userName="a@acme.test")
    upstreams.elevo.add(id="p-2", externalId="2", userName="b@acme.test")
    upstreams.elevo.add(
        id="p-3", externalId=None, userName="own@acme.test", elevo={"syncSource": None}
    )
    return upstreams


async def test_a_refused_token_fails_the_release_and_keeps_the_tenant_until_asked_again(
    res: Resources, profiles: Upstreams
) -> None:
    first = await start_release(res, TENANT)
    assert first is not None
    profiles.elevo.fail_next("PATCH", 401)
    assert await release_page_step(res, TENANT, first, 1, 1) == Done("failed")
    assert await res.tenants.get(TENANT) is not None
    status = await status_document(res, TENANT)
    assert status["disconnect"]["state"] == "failed"
    assert "401" in status["disconnect"]["error"]
    run = await res.runs.get(TENANT, first)
    assert run is not None
    assert run.state is RunState.FAILED
    with pytest.raises(RunConflict):  # still disconnected: nothing syncs
        await start_run(res, TENANT, FULL_RUN, trigger=Trigger(TriggerKind.API))

    again = await start_release(res, TENANT)
    assert again not in {None, first}
    assert again is not None
    assert await release_page_step(res, TENANT, again, 1, 1) == Done("ok")  # sweep 2 follows
    assert await release_page_step(res, TENANT, again, 2, 1) == Done("released")
    assert await res.tenants.get(TENANT) is None
    assert await res.releases.get(TENANT) is None
    assert [p[scim.ELEVO].get("syncSource") for p in profiles.elevo.profiles.values()] == [
        None,
        None,
        None,
    ]
    # Only the two managed profiles were written, each once, with one removal.
    patches = profiles.elevo.bodies("PATCH")
    assert len(patches) == 3  # the refused one, then the two
    assert all(
        body["Operations"] == [{"op": "remove", "path": scim.SYNC_SOURCE}] for body in patches
    )


async def test_a_passing_failure_retries_the_page(res: Resources, profiles: Upstreams) -> None:
    run_id = await start_release(res, TENANT)
    assert run_id is not None
    profiles.elevo.fail_next("GET", 503)
    assert isinstance(await release_page_step(res, TENANT, run_id, 1, 1), Defer)
    assert await res.tenants.get(TENANT) is not None


async def test_the_count_is_the_linked_employees(res: Resources) -> None:
    assert await release_count(res, TENANT) == 0
    links = ProfileLinks(res.redis, TENANT)
    await links.remember("1", "p-1")
    await links.remember("2", "p-2")
    assert await release_count(res, TENANT) == 2


async def test_a_disconnecting_tenant_ignores_webhooks(res: Resources) -> None:
    await start_release(res, TENANT)
    event = {"id": "e1", "topic": "employee.updated", "data": {"id": 1}}
    accepted = await accept_notice(res, TENANT, event, orjson.dumps(event))
    assert (accepted.document()["status"], accepted.document()["run"]) == ("ignored", None)


async def test_no_release_for_no_tenant(res: Resources) -> None:
    assert await start_release(res, "nobody") is None

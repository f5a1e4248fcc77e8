"""The console's tenant-wide buttons over ASGI: pause and resume (CSRF, an operator may),
what waits shown trouble first, and disconnect (the admin's only, confirmed with its count)."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import httpx
from arq.connections import ArqRedis

from app.service.access import Scope
from app.service.resources import Resources
from app.service.tokens import issue_token
from app.service.waiting import Reason, park, paused
from app.store import keys
from app.store.links import ProfileLinks
from app.store.release import ReleaseState
from tests.conftest import TEST_ADMIN_TOKEN
from tests.factories import make_tenant_config


async def _sign_in(client: httpx.AsyncClient, token: str) -> str:
    assert (await client.post("/console/sign-in", data={"token": token})).status_code == 303
    found = re.search(r'name="csrf" value="([^"]+)"', (await client.get("/console/t/acme")).text)
    assert found is not None
    return found.group(1)


async def _operator(client: httpx.AsyncClient, res: Resources) -> tuple[str, str]:
    """Signed in with a real operator token of acme: its id (what audits show), the CSRF."""
    issued = await issue_token(
        res, "acme", scope=Scope.OPERATOR, name="hr", lifetime=timedelta(hours=1), by="admin"
    )
    return issued.stored.id, await _sign_in(client, issued.token)


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def test_an_operator_pauses_and_resumes_and_the_kept_changes_are_applied(
    asgi_console: tuple[httpx.AsyncClient, Resources], redis: ArqRedis
) -> None:
    client, res = asgi_console
    token_id, csrf = await _operator(client, res)
    page = (await client.get("/console/t/acme")).text
    assert ">Pause</button>" in page
    assert "Resume</button>" not in page

    refused = await client.post("/console/t/acme/pause", data={"reason": "migration"})
    assert refused.status_code == 403
    assert await paused(res, "acme") is None

    done = await client.post("/console/t/acme/pause", data={"csrf": csrf, "reason": "migration"})
    assert done.status_code == 303
    await park(res, "acme", ["7", "8"], Reason.PAUSED, run_id=None)
    page = _text((await client.get("/console/t/acme")).text)
    assert f"Paused by {token_id} since" in page
    assert "“migration”" in page
    assert "2 changes kept so far, applied on resume" in page
    assert "Resume" in page
    overview = _text((await client.get("/console/")).text)
    assert "Paused · 2 changes kept" in overview

    assert (await client.post("/console/t/acme/resume", data={})).status_code == 403
    assert await paused(res, "acme") is not None
    resumed = await client.post("/console/t/acme/resume", data={"csrf": csrf})
    assert resumed.status_code == 303
    assert await paused(res, "acme") is None
    assert await redis.zcard(keys.runs("acme")) == 1  # the run applying the two kept changes
    page = _text((await client.get("/console/t/acme")).text)
    assert "Paused by" not in page
    assert "Pause" in page


async def test_a_refused_key_shows_its_waiting_changes_first(
    asgi_console: tuple[httpx.AsyncClient, Resources],
) -> None:
    client, res = asgi_console
    await res.tenants.put(make_tenant_config(tenant="calm"))
    await _sign_in(client, TEST_ADMIN_TOKEN)
    await res.records.note("acme", lucca_key_error="401 from Lucca")
    await park(res, "acme", ["7", "8", "9"], Reason.LUCCA_KEY, run_id=None)
    overview = _text((await client.get("/console/")).text)
    assert "Lucca refused the API key · 3 changes waiting" in overview
    assert overview.index("acme") < overview.index("calm")
    page = _text((await client.get("/console/t/acme")).text)
    assert "Changes waiting" in page
    assert "3 Lucca refuses the tenant's API key; applied as soon as a key works" in page


async def test_an_operator_sees_no_disconnect_and_cannot_do_it(
    asgi_console: tuple[httpx.AsyncClient, Resources], redis: ArqRedis
) -> None:
    client, res = asgi_console
    _, csrf = await _operator(client, res)
    assert "Disconnect" not in (await client.get("/console/t/acme")).text
    assert (await client.get("/console/t/acme/disconnect")).status_code == 404
    answer = await client.post("/console/t/acme/disconnect", data={"csrf": csrf, "confirm": "acme"})
    assert answer.status_code == 404
    assert await res.releases.get("acme") is None


async def test_the_admin_disconnects_after_a_confirmation_naming_the_count(
    asgi_console: tuple[httpx.AsyncClient, Resources],
) -> None:
    client, res = asgi_console
    links = ProfileLinks(res.redis, "acme")
    for user in ("1", "2", "3"):
        await links.remember(user, f"profile-{user}")
    csrf = await _sign_in(client, TEST_ADMIN_TOKEN)
    assert "Disconnect…" in (await client.get("/console/t/acme")).text
    confirm = _text((await client.get("/console/t/acme/disconnect")).text)
    assert "Disconnect and give back 3 profiles" in confirm

    mistyped = await client.post(
        "/console/t/acme/disconnect", data={"csrf": csrf, "confirm": "acne"}
    )
    assert mistyped.status_code == 400
    assert "nothing was done" in mistyped.text
    assert await res.releases.get("acme") is None
    assert (
        await client.post("/console/t/acme/disconnect", data={"confirm": "acme"})
    ).status_code == 403

    started = await client.post(
        "/console/t/acme/disconnect", data={"csrf": csrf, "confirm": "acme"}
    )
    assert started.status_code == 303
    mark = await res.releases.get("acme")
    assert mark is not None
    assert mark.state is ReleaseState.DISCONNECTING
    assert started.headers["location"] == f"/console/t/acme/runs/{mark.run}"
    run_page = _text((await client.get(started.headers["location"])).text)
    assert "release" in run_page
    page = _text((await client.get("/console/t/acme")).text)
    assert "Disconnecting. The release run gives the profiles back" in page
    assert f"Release run {mark.run}" in page
    assert "Disconnect…" not in page
    assert "Disconnect: disconnecting" in _text((await client.get("/console/")).text)
    again = await client.get("/console/t/acme/disconnect")
    assert again.headers["location"] == f"/console/t/acme/runs/{mark.run}"

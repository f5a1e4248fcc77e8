"""simulators/fastscim.py answers like scim2-server (the contract's Elevo) on what the sync does.

One operation sequence (the requests the sync sends: creates, the three filters, paging,
PATCHes of every path app/core/patch.py writes, If-Match, conflicts, errors) runs against both
servers; their transcripts, with server-made ids and timestamps left out, must be equal.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core import scim
from app.core.decision import Change
from app.core.patch import create_resource, patch_operations
from app.core.profile import profile_from_scim
from simulators.fastscim import create_app
from stack.services import Stack

pytestmark = pytest.mark.e2e

TOKEN = "fastscim-test-token"
ROOT = Path(__file__).resolve().parents[2]
SERVER = Path(sys.executable).parent / "scim2-server"


@pytest.fixture(scope="module")
def scim2_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with Stack(tmp_path_factory.mktemp("scim2-server")) as stack:
        yield stack.elevo("scim2", token=TOKEN).url


@pytest.fixture
async def scim2(scim2_root: str) -> AsyncIterator[httpx.AsyncClient]:
    base = f"{scim2_root}/t{uuid.uuid4().hex[:10]}/v2"
    async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=10) as http:
        yield http


@pytest.fixture
async def fast() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(TOKEN))
    async with httpx.AsyncClient(transport=transport, base_url="http://fast/acme/v2") as http:
        yield http


AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"}


def _desired(external_id: str, user_name: str, **overrides: Any) -> dict[str, Any]:
    desired: dict[str, Any] = {
        "externalId": external_id,
        scim.USER_NAME: user_name,
        scim.GIVEN_NAME: "Ada",
        scim.FAMILY_NAME: "Lovelace",
        scim.TITLE: "Engineer",
        scim.WORK_EMAIL: user_name.lower(),
        scim.EMPLOYEE_NUMBER: f"E{external_id}",
        scim.DEPARTMENT: "R&D",
        scim.MANAGER: None,
        scim.WORK_START_DATE: "2021-09-01",
        scim.SYNC_SOURCE: "lucca",
        scim.ACTIVE: True,
        scim.custom_field_path("cost_center"): "CC-1",
    }
    desired.update(overrides)
    return desired


def _clean(value: Any, ids: dict[str, str]) -> Any:
    """A body without what each server makes up (meta), its ids named by what they are.

    Servers may list resources in any order: lists are sorted by externalId and userName.
    """
    if isinstance(value, dict):
        return {k: _clean(v, ids) for k, v in value.items() if k != "meta"}
    if isinstance(value, list):
        items = [_clean(v, ids) for v in value]
        if all(isinstance(v, dict) and "userName" in v for v in items):
            items.sort(key=lambda v: (str(v.get("externalId")), v["userName"]))
        return items
    if isinstance(value, str) and value in ids:
        return ids[value]
    return value


class Transcript:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.lines: list[tuple[str, int, Any]] = []
        self.ids: dict[str, str] = {}

    async def call(
        self, label: str, method: str, path: str, *, keep_body: bool = True, **kwargs: Any
    ) -> httpx.Response:
        headers = {**AUTH, **kwargs.pop("headers", {})}
        response = await self.http.request(method, path, headers=headers, **kwargs)
        body: Any = None
        if response.content:
            body = response.json()
            if method == "POST" and response.status_code == 201:
                self.ids[body["id"]] = f"<id of {body.get('userName')}>"
            if response.status_code >= 400:  # the wording may differ; the kind may not
                body = {"status": body.get("status"), "scimType": body.get("scimType")}
            elif not keep_body:
                body = None
            else:
                body = _clean(body, self.ids)
        self.lines.append((label, response.status_code, body))
        return response


async def _sequence(http: httpx.AsyncClient) -> list[tuple[str, int, Any]]:
    t = Transcript(http)
    ada = create_resource(_desired("1", "Ada.Lovelace@acme.fr"))
    first = await t.call("create ada", "POST", "/Users", json=ada)
    ada_id, ada_etag = first.json()["id"], first.headers["ETag"]
    t.lines.append(("etag is meta.version", 0, ada_etag == first.json()["meta"]["version"]))
    bob = create_resource(_desired("2", "bob@acme.fr", **{scim.MANAGER: ada_id}))
    bob_id = (await t.call("create bob", "POST", "/Users", json=bob, keep_body=False)).json()["id"]
    other = {"schemas": [scim.CORE_USER], "userName": "carol@acme.fr", "externalId": "3"}
    await t.call("create unmanaged", "POST", "/Users", json=other)
    await t.call(
        "taken userName",
        "POST",
        "/Users",
        json=create_resource(_desired("4", "ADA.lovelace@ACME.fr")),
    )
    await t.call("no userName", "POST", "/Users", json={"schemas": [scim.CORE_USER]})

    for label, expression in [
        ("externalId", 'externalId eq "1"'),
        ("externalId is case-exact", 'externalId eq "A1"'),
        ("userName ignores case", 'userName eq "ada.LOVELACE@acme.FR"'),
        ("userName unknown", 'userName eq "nobody@acme.fr"'),
        ("managed", f'{scim.SYNC_SOURCE} eq "lucca"'),
    ]:
        await t.call(
            label, "GET", "/Users", params={"filter": expression, "startIndex": "1", "count": "10"}
        )
    # Paging: each page's size and total; the pages together hold every profile once.
    managed_filter: str | None = f'{scim.SYNC_SOURCE} eq "lucca"'
    for paged in (managed_filter, None):
        seen: list[str] = []
        for start, count in [(1, 1), (2, 1), (3, 5), (9, 5)]:
            params = {"startIndex": str(start), "count": str(count)}
            if paged:
                params["filter"] = paged
            page = await http.get("/Users", params=params, headers=AUTH)
            body = page.json()
            t.lines.append(
                (
                    f"page {start}+{count} of {paged}",
                    page.status_code,
                    [body["totalResults"], body["startIndex"], body["itemsPerPage"]],
                )
            )
            seen += [r["userName"] for r in body["Resources"]]
        t.lines.append((f"pages of {paged}", 0, sorted(seen)))

    got = await t.call("get ada", "GET", f"/Users/{ada_id}")
    t.lines.append(("get etag", 0, got.headers["ETag"] == ada_etag))
    await t.call("get unknown", "GET", "/Users/0000")

    # Every path app/core/patch.py writes, as it writes them.
    profile = profile_from_scim(got.json())
    new = _desired(
        "1",
        "ada.king@acme.fr",
        **{
            scim.GIVEN_NAME: "Augusta",
            scim.FAMILY_NAME: None,
            scim.TITLE: None,
            scim.WORK_EMAIL: "ada.king@acme.fr",
            scim.EMPLOYEE_NUMBER: "E1b",
            scim.DEPARTMENT: "Direction",
            scim.MANAGER: bob_id,
            scim.WORK_START_DATE: "2022-01-03",
            scim.ACTIVE: False,
            scim.custom_field_path("cost_center"): "CC-2",
        },
    )
    diff = {
        path: Change(profile.attributes.get(path), value)
        for path, value in new.items()
        if profile.attributes.get(path) != value
    }
    operations, rewrites = patch_operations(diff, new, profile)
    assert rewrites
    body = {"schemas": [scim.PATCH_OP], "Operations": operations}
    patched = await t.call(
        "patch all paths", "PATCH", f"/Users/{ada_id}", json=body, headers={"If-Match": ada_etag}
    )
    new_etag = patched.headers.get("ETag")
    t.lines.append(("patch changes the version", 0, new_etag not in (None, ada_etag)))
    await t.call("after patch", "GET", f"/Users/{ada_id}")
    await t.call(
        "stale If-Match", "PATCH", f"/Users/{ada_id}", json=body, headers={"If-Match": ada_etag}
    )
    same = await t.call(
        "patch changing nothing",
        "PATCH",
        f"/Users/{ada_id}",
        json=body,
        headers={"If-Match": new_etag or ""},
    )
    t.lines.append(("no change keeps the version", 0, same.headers.get("ETag") == new_etag))

    removals = {
        "schemas": [scim.PATCH_OP],
        "Operations": [
            {"op": "remove", "path": f"{scim.ENTERPRISE}:manager"},
            {"op": "remove", "path": scim.CUSTOM_FIELDS},
            {"op": "remove", "path": "emails"},
            {"op": "remove", "path": scim.SYNC_SOURCE},
            {"op": "add", "path": scim.TITLE, "value": "Countess"},
            {"op": "replace", "path": "externalId", "value": "1x"},
        ],
    }
    await t.call("release and removals", "PATCH", f"/Users/{ada_id}", json=removals)
    await t.call("after removals", "GET", f"/Users/{ada_id}")
    await t.call(
        "managed after release",
        "GET",
        "/Users",
        params={"filter": f'{scim.SYNC_SOURCE} eq "lucca"'},
    )
    await t.call("old externalId", "GET", "/Users", params={"filter": 'externalId eq "1"'})
    await t.call("new externalId", "GET", "/Users", params={"filter": 'externalId eq "1x"'})
    steal = {
        "schemas": [scim.PATCH_OP],
        "Operations": [{"op": "replace", "path": "userName", "value": "BOB@acme.fr"}],
    }
    await t.call("patch to a taken userName", "PATCH", f"/Users/{ada_id}", json=steal)
    await t.call("patch unknown", "PATCH", "/Users/0000", json=steal)
    wrong = await http.get("/Users", headers={"Authorization": "Bearer nope"})
    t.lines.append(("wrong token", wrong.status_code, wrong.json().get("status")))
    return t.lines


async def test_fastscim_answers_like_scim2_server(
    scim2: httpx.AsyncClient, fast: httpx.AsyncClient
) -> None:
    expected = await _sequence(scim2)
    actual = await _sequence(fast)
    for want, got in zip(expected, actual, strict=True):
        assert got == want, f"{want[0]}: scim2-server {want[1:]} != fastscim {got[1:]}"

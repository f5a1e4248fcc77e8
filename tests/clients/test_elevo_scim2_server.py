"""The Elevo client against the real scim2-server, the contract's stand-in for Elevo."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.clients.elevo import ElevoClient
from app.clients.errors import ElevoAuthError, ElevoConflict, ElevoPreconditionFailed
from app.core import scim
from app.secret import Secret
from stack.services import Stack

pytestmark = pytest.mark.e2e

TOKEN = "scim2-server-test-token"
CONTRACT = Path(__file__).resolve().parents[2] / "contracts" / "elevo"
SERVER = Path(sys.executable).parent / "scim2-server"


@pytest.fixture(scope="module")
def scim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The root URL of a scim2-server serving the contract's schemas, any tenant on demand."""
    with Stack(tmp_path_factory.mktemp("scim2-server")) as stack:
        yield stack.elevo("scim2", token=TOKEN).url


@pytest.fixture
def calls() -> list[tuple[str, int]]:
    return []


@pytest.fixture
async def elevo(scim_server: str, calls: list[tuple[str, int]]) -> AsyncIterator[ElevoClient]:
    """A client on a tenant of its own, so that every test starts from an empty Elevo."""
    tenant = f"t{uuid.uuid4().hex[:12]}"
    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
        yield ElevoClient(
            http,
            f"{scim_server}/{tenant}/v2",
            Secret(TOKEN),
            on_response=lambda op, status: calls.append((op, status)),
        )


def user(
    external_id: str, user_name: str, *, managed: bool = True, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemas": [scim.CORE_USER, scim.ENTERPRISE, scim.ELEVO],
        "externalId": external_id,
        "userName": user_name,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        scim.ENTERPRISE: {"employeeNumber": f"E{external_id}"},
        scim.ELEVO: {"syncSource": "lucca"} if managed else {"workStartDate": "2021-09-01"},
    }
    body.update(fields)
    return body


async def test_create_find_patch_and_conflicts(elevo: ElevoClient) -> None:
    created = await elevo.create(user("416", "John.Doe@acme.fr", title="Engineer"))
    assert created.external_id == "416"
    assert created.managed
    assert created.version

    by_link = await elevo.find_by_external_id("416")
    by_name = await elevo.find_by_user_name("john.doe@ACME.FR")
    assert by_link == created
    assert by_name == created
    assert await elevo.find_by_external_id("4160") is None
    assert await elevo.get(created.id) == created
    assert await elevo.get("no-such-profile") is None

    replace_title = [{"op": "replace", "path": "title", "value": "CTO"}]
    new_version = await elevo.patch(created.id, replace_title, version=created.version)
    assert new_version
    assert new_version != created.version
    fetched = await elevo.get(created.id)
    assert fetched is not None
    assert fetched.attributes[scim.TITLE] == "CTO"
    assert fetched.version == new_version

    with pytest.raises(ElevoPreconditionFailed, match="412"):
        await elevo.patch(created.id, replace_title, version=created.version)

    with pytest.raises(ElevoConflict, match="409: uniqueness"):
        await elevo.create(user("417", "JOHN.DOE@acme.fr"))


async def test_a_patch_that_changes_nothing_keeps_the_version(elevo: ElevoClient) -> None:
    created = await elevo.create(user("416", "ada@acme.fr", title="CTO"))
    same = [{"op": "replace", "path": "title", "value": "CTO"}]
    assert await elevo.patch(created.id, same, version=created.version) == created.version


async def test_release_removes_the_sync_source_only(elevo: ElevoClient) -> None:
    created = await elevo.create(user("416", "ada@acme.fr", title="CTO"))
    await elevo.patch(created.id, [{"op": "remove", "path": scim.SYNC_SOURCE}])
    released = await elevo.get(created.id)
    assert released is not None
    assert not released.managed
    assert released.attributes[scim.TITLE] == "CTO"
    assert released.attributes[scim.EMPLOYEE_NUMBER] == "E416"


async def test_find_escapes_quotes_and_backslashes(elevo: ElevoClient) -> None:
    odd = 'a"b\\c'
    created = await elevo.create(user(odd, "odd@acme.fr"))
    assert await elevo.find_by_external_id(odd) == created
    assert await elevo.find_by_external_id('a"b') is None
    # externalId compares case-exact.
    assert await elevo.find_by_external_id(odd.upper()) is None


async def test_iter_managed_pages_over_managed_profiles_only(
    elevo: ElevoClient, calls: list[tuple[str, int]]
) -> None:
    managed = {(await elevo.create(user(str(i), f"u{i}@acme.fr"))).id for i in range(25)}
    for i in range(25, 30):
        await elevo.create(user(str(i), f"u{i}@acme.fr", managed=False))
    calls.clear()

    seen = [profile.id async for profile in elevo.iter_managed(page_size=10)]

    assert len(seen) == 25
    assert set(seen) == managed
    assert calls == [("list_page", 200)] * 3


async def test_a_wrong_token_is_an_auth_error(scim_server: str) -> None:
    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
        client = ElevoClient(http, f"{scim_server}/acme/v2", Secret("not-the-token"))
        with pytest.raises(ElevoAuthError, match="401") as caught:
            await client.find_by_external_id("416")
    assert "not-the-token" not in str(caught.value)

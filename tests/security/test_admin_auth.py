"""Every admin operation of the description refuses a missing or wrong bearer, with no secret."""

from __future__ import annotations

from typing import Any

import pytest

from app.api.auth import bearer_token
from app.api.openapi import openapi_document
from tests.conftest import TEST_ADMIN_TOKEN
from tests.security.support import ACME_BODY, ADMIN, Served, leaked


def admin_operations() -> list[tuple[str, str]]:
    paths: dict[str, Any] = openapi_document()["paths"]
    return [
        (
            method.upper(),
            path.replace("{tenant}", "acme")
            .replace("{run_id}", "20260101T000000-abcdef")
            .replace("{user_id}", "2")
            .replace("{token_id}", "0123456789ab"),
        )
        for path, item in paths.items()
        for method, operation in item.items()
        if isinstance(operation, dict) and operation.get("security")
    ]


WRONG = [
    None,
    "",
    "Bearer",
    "Bearer ",
    "Bearer wrong",
    f"Bearer {TEST_ADMIN_TOKEN[:-1]}",
    f"Bearer {TEST_ADMIN_TOKEN}0",
    f"Bearer {TEST_ADMIN_TOKEN.upper()}",
    f"Basic {TEST_ADMIN_TOKEN}",
    f"Token {TEST_ADMIN_TOKEN}",
    TEST_ADMIN_TOKEN,
    f"Bearer\t{TEST_ADMIN_TOKEN}x",
]


@pytest.mark.parametrize(("method", "path"), admin_operations())
async def test_admin_operations_refuse_missing_or_wrong_bearer(
    served: Served, method: str, path: str
) -> None:
    for authorization in WRONG:
        headers = {} if authorization is None else {"Authorization": authorization}
        body = ACME_BODY if method == "PUT" else ({} if method == "POST" else None)
        response = await served.client.request(method, path, headers=headers, json=body)
        assert response.status_code == 401, (authorization, response.text)
        assert response.json()["error"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
        assert leaked(response.content + str(response.headers).encode(), [TEST_ADMIN_TOKEN]) == []
        assert leaked(response.content) == []
    assert await served.resources.redis.zcard("arq:queue") == 0


def test_every_admin_route_is_behind_the_bearer() -> None:
    assert {path.split("/")[1] for _, path in admin_operations()} == {
        "tenants",
        "sync",
        "metrics",
    }
    assert len(admin_operations()) == 16  # pause, resume (issue 10); webhook (issue 15)


async def test_answers_with_the_right_bearer_show_no_secret(served: Served) -> None:
    shown = await served.client.get("/tenants/acme", headers=ADMIN)
    assert shown.json()["lucca"]["api_key"] == "***"
    assert shown.json()["lucca"]["webhook_secret"] == ["***", "***"]
    assert shown.json()["elevo"]["token"] == "***"
    replaced = await served.put_tenant("acme", shown.json())
    assert replaced.status_code == 200
    for response in (shown, replaced, await served.client.get("/tenants", headers=ADMIN)):
        assert leaked(response.content) == []


@pytest.mark.parametrize(
    "header",
    [f"Bearer {TEST_ADMIN_TOKEN}", f"bearer {TEST_ADMIN_TOKEN}", f"Bearer  {TEST_ADMIN_TOKEN} "],
)
def test_the_bearer_is_recognised_in_its_usual_spellings(header: str) -> None:
    class FakeRequest:
        headers = {"authorization": header}

    assert bearer_token(FakeRequest()) == TEST_ADMIN_TOKEN  # type: ignore[arg-type]

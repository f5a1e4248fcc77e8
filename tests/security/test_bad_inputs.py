"""Every bad input of cases.py gets its documented answer, queues nothing, and leaks nothing."""

from __future__ import annotations

import pytest

from tests.security.cases import CASES, BadInput, case_id
from tests.security.support import Served, leaked


@pytest.mark.parametrize("case", CASES, ids=case_id)
async def test_bad_input_is_refused_as_documented(served: Served, case: BadInput) -> None:
    before = await served.redis_keys()
    sent = case.build()
    response = await served.client.request(
        sent.method, sent.path, headers=sent.headers, content=sent.content
    )
    assert response.status_code == case.status, response.text
    if case.error is None:
        assert not response.headers.get("content-type", "").startswith("application/json") or (
            case.status == 202
        )
    else:
        assert response.json()["error"] == case.error, response.text
    assert leaked(response.content) == []
    assert leaked(str(response.headers)) == []
    if not case.queues:
        # Nothing queued, no run recorded, no dedupe mark, no tenant written: no key at all.
        assert await served.redis_keys() == before

"""schemathesis against `/openapi.json`: no 5xx, and every answer is the one described.

Each operation is its own test. The app runs in-process (ASGI) against the test Redis, with
tenants acme and beta registered, one run record and one user history, so the fixed examples
of the description (`acme`, run `20260101T000000-abcdef`, user `416`) reach real data. Webhooks
generated for acme are signed with acme's secret, so accepted events are checked too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

# CPython 3.11.7 can raise "AST constructor recursion depth mismatch" when a module is first
# imported (and parsed) deep in a call stack; hypothesis imports this one lazily, deep inside
# schemathesis' draws. Imported here, at the top of the stack, it is parsed there once.
import hypothesis.strategies._internal.random  # noqa: F401
import orjson
import pytest
import redis as sync_redis
import schemathesis
from arq.connections import ArqRedis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette

from app.main import create_app
from app.store import keys
from tests.conftest import TEST_REDIS_URL, make_settings
from tests.security.conftest import register_tenants
from tests.security.support import ACME_WEBHOOK, ADMIN, leaked, serve, signed_headers

RUN_ID = "20260101T000000-abcdef"
USER_ID = "416"
MAX_EXAMPLES = 30
JSON_TYPES = ("application/json", "application/cloudevents+json")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    ignored_auth,
]


def production_app() -> Starlette:
    """The app as `uvicorn --factory app.main:create_app` builds it (its lifespan, its Redis)."""
    # create_app (without resources) sets the process's logging up for production: keep
    # pytest's handlers and level as they are.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return create_app(make_settings(ALLOW_HTTP_ELEVO="false"))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.fixture
async def seeded(redis: ArqRedis) -> None:
    """Tenants acme and beta, a run of acme and a user's history, in a fresh database."""
    async with serve(make_settings()) as app:
        await register_tenants(app)
    entry = {"user": USER_ID, "action": "update", "reason": "title changed", "diff": {}}
    await redis.lpush(keys.old_history("acme", USER_ID), orjson.dumps(entry | {"run": RUN_ID}))
    await redis.hset(
        keys.run("acme", RUN_ID),
        mapping={"id": RUN_ID, "mode": "full", "trigger": "api", "dry_run": 0, "state": "done"},
    )


@pytest.fixture
def plain_redis() -> Iterator[sync_redis.Redis]:
    client = sync_redis.Redis.from_url(TEST_REDIS_URL)
    yield client
    client.close()


# Loaded at collection, from the app itself. (`schemathesis.pytest.from_fixture` would defer
# this to the test, but schemathesis 4.32 sets `node._nodeid` there, which pytest 9 removed.)
schema = schemathesis.openapi.from_asgi("/openapi.json", production_app())


def sign_for_acme(case: Any) -> None:
    """Sign a valid JSON webhook for acme as Lucca would, over the exact bytes sent.

    Negative cases stay unsigned: a signature would make their refusal a matter of the
    signature rather than of the invalid part.
    """
    if (case.method, case.path) != ("POST", "/webhooks/lucca/{tenant}"):
        return
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return
    if case.path_parameters.get("tenant") != "acme" or case.media_type not in JSON_TYPES:
        return
    try:
        # What requests sends for `json=`: json.dumps with its defaults, UTF-8.
        raw = json.dumps(case.body, allow_nan=False).encode()
    except (TypeError, ValueError):
        return
    signed = signed_headers(ACME_WEBHOOK, raw, content_type=case.media_type)
    case.headers = {**(case.headers or {}), **signed}


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_answer_is_described(case: Any, seeded: None, plain_redis: sync_redis.Redis) -> None:
    sign_for_acme(case)
    # A full run asked while one is running answers 500 (a known bug pinned in
    # test_known_issues.py); no worker runs here to end the first one, so end it by hand.
    plain_redis.delete(keys.active_full_run("acme"), keys.active_full_run("beta"))
    response = case.call_and_validate(headers=ADMIN, checks=CHECKS)
    assert leaked(response.content) == [], "a secret in an answer"

"""After a realistic end-to-end flow, no clear secret is in any log record, Redis key, answer or
alert.

The flow: tenants registered through the admin API (one healthy, one whose Lucca key and Elevo
token are wrong, so error paths log and record too), signed and forged webhooks, a full sync, a
dry run, a per-user sync, the refused credentials' alerts (the receiver fails once, then takes
them), and every read route. Then every log record of every logger (DEBUG and up, formatted as
production does), every Redis key and value (strings, hashes, lists, sets, sorted sets, ARQ job
payloads and results) and every alert received is searched for each secret.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest
from arq.connections import ArqRedis

from app.logs import JsonFormatter
from app.service.alerts import check_alerts
from tests.conftest import TEST_ADMIN_TOKEN, TEST_SECRETS_KEY
from tests.e2e.harness import SCIM_TOKEN, Service, eventually, settle
from tests.e2e.receiver import Receiver, receiving
from tests.e2e.stories import small_company
from tests.security.support import leaked, signed_headers

pytestmark = pytest.mark.e2e


@contextmanager
def every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """caplog at DEBUG for every logger, including those that do not propagate (uvicorn)."""
    caplog.set_level(logging.DEBUG)
    manager = logging.Logger.manager
    loggers = [lg for lg in manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    saved = [(lg, lg.level) for lg in loggers]
    hooked = [lg for lg in loggers if not lg.propagate]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    for lg in hooked:
        lg.addHandler(caplog.handler)
    try:
        yield
    finally:
        for lg in hooked:
            lg.removeHandler(caplog.handler)
        for lg, level in saved:
            lg.setLevel(level)


def log_texts(records: list[logging.LogRecord]) -> Iterator[tuple[str, str]]:
    """(where, text) for each record: its raw message, its production JSON line, its traceback."""
    formatter, plain = JsonFormatter(), logging.Formatter()
    for record in records:
        where = f"{record.name}:{record.lineno}"
        yield where, record.getMessage()
        yield where, formatter.format(record)
        if record.exc_info:
            yield where, plain.formatException(record.exc_info)


async def redis_contents(redis: ArqRedis) -> list[tuple[bytes, bytes]]:
    """(key, piece) for every key, its name and each value it holds, read by type."""
    found: list[tuple[bytes, bytes]] = []
    async for key in redis.scan_iter(count=1000):
        kind = (await redis.type(key)).decode()
        pieces: list[bytes] = [key]
        if kind == "string":
            pieces.append((await redis.get(key)) or b"")
        elif kind == "hash":
            for field, value in (await redis.hgetall(key)).items():
                pieces += [field, value]
        elif kind == "list":
            pieces += await redis.lrange(key, 0, -1)
        elif kind == "set":
            pieces += list(await redis.smembers(key))
        elif kind == "zset":
            pieces += [member for member, _ in await redis.zrange(key, 0, -1, withscores=True)]
        elif kind != "none":  # expired between SCAN and TYPE
            raise AssertionError(f"unexpected Redis type {kind} for {key!r}")
        found += [(key, piece) for piece in pieces]
    return found


class Flow:
    """Drives the service over HTTP and keeps every answer it got."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.answers: list[httpx.Response] = []
        self.redis_seen: list[tuple[bytes, bytes]] = []

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("headers", self.service.admin_headers)
        response = await self.service.http.request(method, self.service.url + path, **kwargs)
        self.answers.append(response)
        return response

    async def webhook(self, tenant: str, secret: str, event: dict[str, Any]) -> int:
        body = orjson.dumps(event)
        response = await self.call(
            "POST", f"/webhooks/lucca/{tenant}", content=body, headers=signed_headers(secret, body)
        )
        return response.status_code

    async def run(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.call("POST", f"/sync/{tenant}", json=body)
        assert response.status_code == 202, response.text
        run_id = response.json()["run"]

        async def ended() -> dict[str, Any] | None:
            answer = await self.call("GET", f"/sync/{tenant}/runs/{run_id}")
            run: dict[str, Any] = answer.json()
            return run if run["state"] in {"done", "failed", "held"} else None

        return await eventually(ended, timeout=60)

    async def snapshot_redis(self) -> None:
        self.redis_seen += await redis_contents(self.service.resources.redis)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as receiver:
        receiver.fail_next = 1  # the retry's path logs too
        yield receiver


async def test_no_secret_in_logs_redis_or_answers(
    service: Service, caplog: pytest.LogCaptureFixture, receiver: Receiver
) -> None:
    company = service.registry.add(small_company(rate_limit=None))
    other = service.registry.add(small_company(rate_limit=None))
    good, bad = f"leak-{secrets.token_hex(3)}", f"leak-bad-{secrets.token_hex(3)}"
    webhook, webhook_old = f"whsec-now-{secrets.token_hex(8)}", f"whsec-old-{secrets.token_hex(8)}"
    wrong_key, wrong_token = (
        f"wrong-lucca-{secrets.token_hex(8)}",
        f"wrong-elevo-{secrets.token_hex(8)}",
    )
    bad_webhook = f"whsec-bad-{secrets.token_hex(8)}"
    alerts_secret = f"alerts-{secrets.token_hex(8)}"
    watched = [
        company.api_key, other.api_key, webhook, webhook_old, wrong_key, wrong_token,
        bad_webhook, SCIM_TOKEN, TEST_ADMIN_TOKEN, TEST_SECRETS_KEY, alerts_secret,
    ]  # fmt: skip
    flow = Flow(service)

    with every_logger_at_debug(caplog):
        for name, lucca, key, secrets_, token in (
            (good, company, company.api_key, [webhook, webhook_old], SCIM_TOKEN),
            (bad, other, wrong_key, bad_webhook, wrong_token),
        ):
            body = {
                "lucca": {"subdomain": lucca.subdomain, "api_key": key, "webhook_secret": secrets_},
                "elevo": {"scim_url": f"{service.scim_base}/{name}/v2", "token": token},
                "alerts_url": receiver.url,
                "alerts_secret": alerts_secret,
            }
            assert (await flow.call("PUT", f"/tenants/{name}", json=body)).status_code == 201
            # Sent back as a GET shows it ("***"), it keeps every secret.
            shown = (await flow.call("GET", f"/tenants/{name}")).json()
            assert (await flow.call("PUT", f"/tenants/{name}", json=shown)).status_code == 200
        await flow.call("GET", "/tenants")

        # Webhooks: signed with the current and the previous secret, replayed, forged.
        events = company.update(2, lastName="Leaky") + company.update(3, firstName="Chlo")
        assert await flow.webhook(good, webhook, events[0]) == 202
        assert await flow.webhook(good, webhook_old, events[1]) == 202
        assert await flow.webhook(good, webhook, events[0]) == 202  # a duplicate
        assert await flow.webhook(good, bad_webhook, events[1]) == 401
        assert await flow.webhook(bad, bad_webhook, other.update(2, lastName="Nope")[0]) == 202
        await flow.call("GET", f"/webhooks/lucca/{good}", params={"echo": "activation"})
        await flow.snapshot_redis()  # jobs may still be queued here

        full = await flow.run(good, {"mode": "full"})
        assert full["state"] == "done", full
        dry = await flow.run(good, {"users": ["1", 2], "dry_run": True})
        assert dry["state"] == "done", dry
        await flow.run(good, {"users": [4]})
        await flow.run(bad, {"mode": "full"})  # fails: wrong Lucca key, wrong Elevo token
        await flow.call("POST", f"/sync/{bad}", json={"users": ["2"]})
        # The minute's alerts_tick would raise them too, at a time of its choosing.
        await check_alerts(service.resources, bad)
        await eventually(lambda: _raised(receiver, "lucca_key_refused"), timeout=30)
        await settle(service)

        for name in (good, bad):
            await flow.call("GET", f"/sync/{name}")
            for user in ("1", "2", "3", "4"):
                await flow.call("GET", f"/sync/{name}/users/{user}")
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
            await flow.call("GET", path)
        await flow.snapshot_redis()

    # The flow did reach what is searched: records of every logger, ARQ payloads, errors.
    assert len(caplog.records) > 20
    assert any(key.startswith(b"arq:result:") for key, _ in flow.redis_seen)
    assert any(key.startswith(b"tenant:") for key, _ in flow.redis_seen)
    # The bad tenant's employees wait for credentials that work, the refusal shown (issue 10).
    assert any(
        r.json()["waiting"]["reasons"][0]["error"]
        for r in flow.answers
        if r.request.method == "GET"
        and r.url.path == f"/sync/{bad}"
        and r.json()["waiting"]["users"]
    )

    in_logs = [(where, leaked(text, watched)) for where, text in log_texts(caplog.records)]
    assert [hit for hit in in_logs if hit[1]] == [], "a secret in a log record"
    in_redis = [(key, leaked(piece, watched)) for key, piece in flow.redis_seen]
    assert [hit for hit in in_redis if hit[1]] == [], "a secret in Redis"
    in_answers = [
        (
            f"{r.request.method} {r.url.path} -> {r.status_code}",
            leaked(r.content + str(r.headers).encode(), watched),
        )
        for r in flow.answers
    ]
    assert [hit for hit in in_answers if hit[1]] == [], "a secret in an answer"
    in_alerts = [leaked(body + str(head).encode(), watched) for head, body in receiver.received]
    assert [hit for hit in in_alerts if hit] == [], "a secret in an alert"


async def _raised(receiver: Receiver, kind: str) -> bool:
    """The receiver took a raised notice of `kind` (after the 503 it answered first)."""
    delivered = receiver.notices()[1:]
    return any((n["kind"], n["state"]) == (kind, "raised") for n in delivered)

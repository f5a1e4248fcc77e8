"""Tenant secrets at rest: never clear in Redis, key rotation end to end, tenant-bound tokens."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import orjson
import pytest
from arq.connections import ArqRedis
from cryptography.fernet import Fernet

from app.rotate_keys import rotate
from app.store import keys
from app.store.tenants import TenantStoreError
from tests.conftest import TEST_ADMIN_TOKEN, TEST_REDIS_URL, make_settings
from tests.security.conftest import register_tenants
from tests.security.support import (
    ACME_API_KEY,
    ACME_ELEVO_TOKEN,
    ACME_WEBHOOK,
    ADMIN,
    TENANT_SECRETS,
    Served,
    leaked,
    serve,
    signed_headers,
)

ROOT = Path(__file__).resolve().parents[2]
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def employee_updated() -> bytes:
    return orjson.dumps(
        {"id": os.urandom(8).hex(), "topic": "employee.updated", "data": {"id": "2"}}
    )


async def tenant_answer(secrets_key: str, tenant: str = "acme") -> tuple[int, str]:
    async with serve(make_settings(SECRETS_KEY=secrets_key)) as app:
        response = await app.client.get(f"/tenants/{tenant}", headers=ADMIN)
        return response.status_code, response.text


async def webhook_status(secrets_key: str, tenant: str = "acme") -> int:
    """A webhook signed with acme's secret: accepted only if the config decrypts right."""
    async with serve(make_settings(SECRETS_KEY=secrets_key)) as app:
        body = employee_updated()
        response = await app.client.post(
            f"/webhooks/lucca/{tenant}", content=body, headers=signed_headers(ACME_WEBHOOK, body)
        )
        return response.status_code


async def test_stored_configs_hold_no_clear_secret(served: Served) -> None:
    redis = served.resources.redis
    for tenant in ("acme", "beta"):
        raw = await redis.get(keys.tenant_config(tenant))
        assert raw is not None
        assert leaked(raw) == []
        document = orjson.loads(raw)
        for token in (document["lucca"]["api_key"], document["elevo"]["token"]):
            assert token.startswith("gAAAAA")  # a Fernet token


async def test_key_rotation_end_to_end(redis: ArqRedis) -> None:
    async with serve(make_settings(SECRETS_KEY=OLD_KEY)) as app:
        await register_tenants(app)
    before = await redis.get(keys.tenant_config("acme"))
    # Not yet rotated: the new key alone cannot read what the old one wrote.
    status, text = await tenant_answer(NEW_KEY)
    assert (status, orjson.loads(text)["error"]) == (500, "tenant_unreadable")
    assert leaked(text) == []

    # Every process runs with `new,old`; both still read everything meanwhile.
    assert (await tenant_answer(f"{NEW_KEY},{OLD_KEY}"))[0] == 200
    assert await rotate(make_settings(SECRETS_KEY=f"{NEW_KEY},{OLD_KEY}")) == 2
    assert await redis.get(keys.tenant_config("acme")) != before

    # `old` dropped: `new` alone reads every secret right (the webhook secret verifies).
    status, text = await tenant_answer(NEW_KEY)
    assert status == 200, text
    assert orjson.loads(text)["lucca"]["api_key"] == "***"
    assert await webhook_status(NEW_KEY) == 202
    assert (await tenant_answer(NEW_KEY, "beta"))[0] == 200
    # ... and the old key alone no longer reads anything.
    assert (await tenant_answer(OLD_KEY))[0] == 500
    assert await webhook_status(OLD_KEY) == 503  # never 404: Lucca would drop the endpoint


async def run_rotation_command(secrets_key: str) -> tuple[int, str, str]:
    """`python -m app.rotate_keys` as an operator runs it: (exit code, stdout, stderr)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "REDIS_URL": TEST_REDIS_URL,
        "ADMIN_TOKEN": TEST_ADMIN_TOKEN,
        "SECRETS_KEY": secrets_key,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.rotate_keys",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_rotation_command_line(redis: ArqRedis) -> None:
    async with serve(make_settings(SECRETS_KEY=OLD_KEY)) as app:
        await register_tenants(app)
    code, out, err = await run_rotation_command(f"{NEW_KEY},{OLD_KEY}")
    assert (code, out) == (0, "re-encrypted the secrets of 2 tenant(s)\n"), err
    assert leaked(out + err, [*TENANT_SECRETS, NEW_KEY, OLD_KEY, TEST_ADMIN_TOKEN]) == []
    assert (await tenant_answer(NEW_KEY))[0] == 200
    assert await webhook_status(NEW_KEY) == 202
    # Running it again is harmless.
    assert (await run_rotation_command(NEW_KEY))[0] == 0
    assert (await tenant_answer(NEW_KEY, "beta"))[0] == 200


async def test_a_malformed_key_fails_the_command_without_printing_it(redis: ArqRedis) -> None:
    code, out, err = await run_rotation_command(f"not-a-fernet-key-7c1d,{OLD_KEY}")
    assert code == 1
    assert "not-a-fernet-key-7c1d" not in out + err
    assert OLD_KEY not in out + err


async def test_a_document_copied_to_another_tenant_does_not_decrypt(served: Served) -> None:
    redis = served.resources.redis
    stolen = await redis.get(keys.tenant_config("acme"))
    assert stolen is not None
    # Someone with Redis access files acme's document under a tenant of their own...
    await redis.set(keys.tenant_config("mallory"), stolen)
    await redis.sadd(keys.tenants(), "mallory")
    response = await served.client.get("/tenants/mallory", headers=ADMIN)
    assert (response.status_code, response.json()["error"]) == (500, "tenant_unreadable")
    assert leaked(response.content) == []
    # ... or over beta's: beta stops working, but never runs with acme's credentials.
    await redis.set(keys.tenant_config("beta"), stolen)
    response = await served.client.get("/tenants/beta", headers=ADMIN)
    assert (response.status_code, response.json()["error"]) == (500, "tenant_unreadable")
    body = employee_updated()
    for tenant in ("mallory", "beta"):
        answer = await served.client.post(
            f"/webhooks/lucca/{tenant}", content=body, headers=signed_headers(ACME_WEBHOOK, body)
        )
        assert answer.status_code == 503
    assert await redis.zcard("arq:queue") == 0


async def test_a_token_moved_to_another_field_does_not_decrypt(served: Served) -> None:
    redis = served.resources.redis
    raw = await redis.get(keys.tenant_config("acme"))
    assert raw is not None
    document = orjson.loads(raw)
    # The Elevo token field now holds the Lucca API key's token: it must not be sent to Elevo.
    document["elevo"]["token"] = document["lucca"]["api_key"]
    await redis.set(keys.tenant_config("acme"), orjson.dumps(document))
    response = await served.client.get("/tenants/acme", headers=ADMIN)
    assert (response.status_code, response.json()["error"]) == (500, "tenant_unreadable")
    assert leaked(response.content, [ACME_API_KEY, ACME_ELEVO_TOKEN]) == []


async def test_rotation_names_a_tenant_it_cannot_read(served: Served) -> None:
    redis = served.resources.redis
    stolen = await redis.get(keys.tenant_config("acme"))
    assert stolen is not None
    await redis.set(keys.tenant_config("mallory"), stolen)
    await redis.sadd(keys.tenants(), "mallory")
    current = served.resources.settings.secrets_keys[0].reveal()
    with pytest.raises(TenantStoreError, match="mallory") as failure:
        await rotate(make_settings(SECRETS_KEY=f"{NEW_KEY},{current}"))
    assert leaked(str(failure.value)) == []
    assert "2 other tenant(s) were re-encrypted" in str(failure.value)

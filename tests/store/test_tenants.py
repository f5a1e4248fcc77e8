from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import orjson
import pytest
from arq.connections import ArqRedis
from cryptography.fernet import Fernet

from app import rotate_keys
from app.core.tenant import GuardConfig, TenantConfig
from app.crypto import SecretBox
from app.secret import Secret
from app.store import keys
from app.store.tenants import TenantStore, TenantStoreError
from tests.conftest import TEST_REDIS_URL, make_settings

API_KEY = "lucca-api-key-4f1b2c"
ELEVO_TOKEN = "elevo-token-9d8e7f"
WEBHOOKS = ("webhook-current-a1b2", "webhook-previous-c3d4")
SECRETS = (API_KEY, ELEVO_TOKEN, *WEBHOOKS)


def new_key() -> Secret:
    return Secret(Fernet.generate_key().decode())


def make_config(tenant: str = "acme", **overrides: Any) -> TenantConfig:
    values: dict[str, Any] = {
        "tenant": tenant,
        "lucca_subdomain": tenant,
        "lucca_api_key": Secret(API_KEY),
        "elevo_scim_url": f"http://127.0.0.1:8090/{tenant}/v2",
        "elevo_token": Secret(ELEVO_TOKEN),
        "lucca_domain": "ilucca-demo.net",
        "webhook_secrets": tuple(Secret(w) for w in WEBHOOKS),
        "skip_field": "e_skip",
        "custom_fields": {"cost_center": "extendedData.e_cost_center"},
        "timezone": "Asia/Tokyo",
        "nightly_at": "03:15",
        "guard": GuardConfig(max_suspend_ratio=0.2, max_suspend_count=7),
        "lucca_requests_per_minute": 25,
        "poll_interval_seconds": 300,
    }
    values.update(overrides)
    return TenantConfig(**values)


@pytest.fixture
def key() -> Secret:
    return new_key()


@pytest.fixture
def store(redis: ArqRedis, key: Secret) -> TenantStore:
    return TenantStore(redis, SecretBox([key]))


async def all_values(redis: ArqRedis) -> list[bytes]:
    """Every value of every key in the database, whatever its type."""
    values: list[bytes] = []
    async for name in redis.scan_iter():
        kind = (await redis.type(name)).decode()
        if kind == "string":
            values.append(await redis.get(name))
        elif kind == "set":
            values.extend(await redis.smembers(name))
        elif kind == "hash":
            values.extend((await redis.hgetall(name)).values())
        elif kind == "list":
            values.extend(await redis.lrange(name, 0, -1))
        else:
            raise AssertionError(f"unexpected key type {kind}")
        values.append(name)
    return values


async def test_round_trip(store: TenantStore) -> None:
    config = make_config()
    assert await store.put(config) is True
    assert await store.get("acme") == config


async def test_round_trip_of_the_minimal_config(store: TenantStore) -> None:
    config = TenantConfig(
        tenant="a",
        lucca_subdomain="a",
        lucca_api_key=Secret("k"),
        elevo_scim_url="https://scim.example/v2",
        elevo_token=Secret("t"),
    )
    await store.put(config)
    assert await store.get("a") == config


async def test_put_tells_new_from_replaced(store: TenantStore) -> None:
    assert await store.put(make_config()) is True
    replaced = make_config(timezone="UTC", webhook_secrets=())
    assert await store.put(replaced) is False
    assert await store.get("acme") == replaced


async def test_unknown_and_invalid_tenants_are_none(store: TenantStore) -> None:
    assert await store.get("nobody") is None
    assert await store.get("Not:A/Tenant") is None
    assert await store.delete("Not:A/Tenant") is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tenant": "x:config"}, "tenant name"),
        ({"lucca_subdomain": "evil.com/x"}, r"lucca\.subdomain"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"elevo_scim_url": "ftp://x/v2"}, r"elevo\.scim_url"),
    ],
)
async def test_put_refuses_an_invalid_config(
    store: TenantStore, redis: ArqRedis, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await store.put(make_config(**overrides))
    assert await redis.dbsize() == 0


async def test_put_normalises_like_the_api(store: TenantStore) -> None:
    await store.put(make_config(elevo_scim_url="HTTPS://Scim.Example/acme/v2/"))
    config = await store.get("acme")
    assert config is not None
    assert config.elevo_scim_url == "https://scim.example/acme/v2"


async def test_list_and_delete(store: TenantStore, redis: ArqRedis) -> None:
    for tenant in ("globex", "acme", "initech"):
        await store.put(make_config(tenant))
    assert await store.list() == ["acme", "globex", "initech"]
    assert await store.delete("globex") is True
    assert await store.delete("globex") is False
    assert await store.list() == ["acme", "initech"]
    assert await store.get("globex") is None
    assert not await redis.exists(keys.tenant_config("globex"))


async def test_layout_and_no_secret_in_clear(store: TenantStore, redis: ArqRedis) -> None:
    await store.put(make_config())
    await store.put(make_config("globex"))
    assert set(await redis.keys()) == {
        b"tenants",
        b"tenant:acme:config",
        b"tenant:globex:config",
    }
    values = await all_values(redis)
    for value in values:
        for secret in SECRETS:
            assert secret.encode() not in value
    document = orjson.loads(await redis.get(keys.tenant_config("acme")))
    # Everything but the secrets is in clear, in the admin body's shape.
    assert document["lucca"]["subdomain"] == "acme"
    assert document["timezone"] == "Asia/Tokyo"
    assert document["custom_fields"] == {"cost_center": "extendedData.e_cost_center"}
    assert len(document["lucca"]["webhook_secret"]) == 2


async def test_a_token_moved_to_another_tenant_does_not_decrypt(
    store: TenantStore, redis: ArqRedis
) -> None:
    await store.put(make_config("acme", lucca_api_key=Secret("acme-key")))
    await store.put(make_config("globex", lucca_api_key=Secret("globex-key")))
    acme = orjson.loads(await redis.get(keys.tenant_config("acme")))
    globex = orjson.loads(await redis.get(keys.tenant_config("globex")))
    globex["lucca"]["api_key"] = acme["lucca"]["api_key"]
    await redis.set(keys.tenant_config("globex"), orjson.dumps(globex))
    with pytest.raises(TenantStoreError, match="'globex'") as info:
        await store.get("globex")
    assert "acme-key" not in str(info.value)


async def test_a_token_moved_to_another_field_does_not_decrypt(
    store: TenantStore, redis: ArqRedis
) -> None:
    await store.put(make_config())
    document = orjson.loads(await redis.get(keys.tenant_config("acme")))
    document["elevo"]["token"] = document["lucca"]["api_key"]
    await redis.set(keys.tenant_config("acme"), orjson.dumps(document))
    with pytest.raises(TenantStoreError, match=r"elevo\.token"):
        await store.get("acme")


async def test_wrong_key_names_the_tenant_not_the_secret(redis: ArqRedis) -> None:
    await TenantStore(redis, SecretBox([new_key()])).put(make_config())
    with pytest.raises(TenantStoreError, match="'acme'") as info:
        await TenantStore(redis, SecretBox([new_key()])).get("acme")
    for secret in SECRETS:
        assert secret not in str(info.value)


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[]", b'{"lucca": 1}', b'{"lucca": {}, "elevo": {}}', b"{}"],
)
async def test_malformed_documents(store: TenantStore, redis: ArqRedis, raw: bytes) -> None:
    await redis.set(keys.tenant_config("acme"), raw)
    with pytest.raises(TenantStoreError, match="'acme'"):
        await store.get("acme")


async def test_an_invalid_stored_document_is_reported(store: TenantStore, redis: ArqRedis) -> None:
    await store.put(make_config())
    document = orjson.loads(await redis.get(keys.tenant_config("acme")))
    document["timezone"] = "Mars/Olympus"
    await redis.set(keys.tenant_config("acme"), orjson.dumps(document))
    with pytest.raises(TenantStoreError, match="'acme' is invalid: `timezone`"):
        await store.get("acme")


async def test_reencrypt_all_moves_every_secret_to_the_first_key(redis: ArqRedis) -> None:
    old, new = new_key(), new_key()
    await TenantStore(redis, SecretBox([old])).put(make_config("acme"))
    await TenantStore(redis, SecretBox([old])).put(make_config("globex", webhook_secrets=()))
    before = await redis.get(keys.tenant_config("acme"))
    assert await TenantStore(redis, SecretBox([new, old])).reencrypt_all() == 2
    assert await redis.get(keys.tenant_config("acme")) != before
    new_only = TenantStore(redis, SecretBox([new]))
    assert await new_only.get("acme") == make_config("acme")
    assert await new_only.get("globex") == make_config("globex", webhook_secrets=())
    with pytest.raises(TenantStoreError):
        await TenantStore(redis, SecretBox([old])).get("acme")


async def test_reencrypt_all_names_the_tenants_it_cannot_read(redis: ArqRedis) -> None:
    old, new, lost = new_key(), new_key(), new_key()
    await TenantStore(redis, SecretBox([old])).put(make_config("acme"))
    await TenantStore(redis, SecretBox([lost])).put(make_config("globex"))
    with pytest.raises(TenantStoreError, match=r"globex.*1 other tenant"):
        await TenantStore(redis, SecretBox([new, old])).reencrypt_all()
    assert await TenantStore(redis, SecretBox([new])).get("acme") == make_config("acme")


async def test_reencrypt_all_skips_a_tenant_deleted_meanwhile(
    store: TenantStore, redis: ArqRedis
) -> None:
    await store.put(make_config())
    await redis.sadd(keys.tenants(), "ghost")
    assert await store.reencrypt_all() == 1


async def test_rotate_keys_command(redis: ArqRedis) -> None:
    old, new = new_key(), new_key()
    await TenantStore(redis, SecretBox([old])).put(make_config())
    settings = make_settings(REDIS_URL=TEST_REDIS_URL, SECRETS_KEY=f"{new.reveal()},{old.reveal()}")
    assert await rotate_keys.rotate(settings) == 1
    assert await TenantStore(redis, SecretBox([new])).get("acme") == make_config()


def test_rotate_keys_main_reports_a_bad_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", TEST_REDIS_URL)
    monkeypatch.setenv("ADMIN_TOKEN", "x")
    monkeypatch.setenv("SECRETS_KEY", "not-a-fernet-key")
    assert rotate_keys.main() == 1
    err = capsys.readouterr().err
    assert "key rotation failed" in err
    assert "not-a-fernet-key" not in err


async def test_rotate_keys_as_a_command(redis: ArqRedis) -> None:
    old, new = new_key(), new_key()
    await TenantStore(redis, SecretBox([old])).put(make_config())
    env = {
        **os.environ,
        "REDIS_URL": TEST_REDIS_URL,
        "ADMIN_TOKEN": "x" * 16,
        "SECRETS_KEY": f"{new.reveal()},{old.reveal()}",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.rotate_keys",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert stdout.decode() == "re-encrypted the secrets of 1 tenant(s)\n"
    assert new.reveal() not in stderr.decode() + stdout.decode()
    assert await TenantStore(redis, SecretBox([new])).get("acme") == make_config()

"""Fixtures, one per real component: Redis, settings, and (in e2e) the simulators and workers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable

import httpx
import hypothesis  # noqa: F401  # imported early: its late import at session end trips CPython 3.11.7's AST depth check
import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from cryptography.fernet import Fernet

from app.serialization import job_deserializer, job_serializer
from app.settings import Settings

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
TEST_SECRETS_KEY = Fernet.generate_key().decode()
TEST_ADMIN_TOKEN = "test-admin-token-0123456789"


def make_settings(**overrides: object) -> Settings:
    env = {
        "REDIS_URL": TEST_REDIS_URL,
        "ADMIN_TOKEN": TEST_ADMIN_TOKEN,
        "SECRETS_KEY": TEST_SECRETS_KEY,
        "LUCCA_URL_TEMPLATE": "http://127.0.0.1:8081/{subdomain}",
        "ALLOW_HTTP_ELEVO": "true",
        "PORT": "8000",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return Settings.from_env(env)


Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that records each request and answers with ``answer``."""

    def __init__(self, answer: Handler) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


@pytest.fixture
async def http_for() -> AsyncIterator[Callable[[Handler], httpx.AsyncClient]]:
    """httpx clients over `MockTransport(handler)`, closed after the test."""
    clients: list[httpx.AsyncClient] = []

    def make(handler: Handler) -> httpx.AsyncClient:
        clients.append(httpx.AsyncClient(transport=httpx.MockTransport(handler)))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def calls() -> list[tuple[str, int]]:
    """What a client's `on_response` hook saw: (operation, status)."""
    return []


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
async def redis() -> AsyncIterator[ArqRedis]:
    """A real Redis database, emptied before each test."""
    pool = await create_pool(
        RedisSettings.from_dsn(TEST_REDIS_URL),
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
    )
    await pool.flushdb()
    yield pool
    await pool.aclose()

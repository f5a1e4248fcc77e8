"""The processes reach Redis by REDIS_URL, or through the sentinels that name its master."""

from __future__ import annotations

from app.service.resources import redis_settings
from tests.conftest import make_settings


def test_redis_url_alone_is_the_server() -> None:
    plain = redis_settings(make_settings(REDIS_URL="redis://:pw@10.0.0.9:6380/4"))
    assert (plain.host, plain.port, plain.database, plain.password) == ("10.0.0.9", 6380, 4, "pw")
    assert plain.sentinel is False


def test_with_sentinels_the_url_gives_database_password_and_tls() -> None:
    settings = make_settings(
        REDIS_URL="rediss://svc:pw@unused:6379/4",
        REDIS_SENTINELS="10.0.0.5:26379,10.0.0.6:26379",
        REDIS_SENTINEL_MASTER="sync",
    )
    found = redis_settings(settings)
    assert found.sentinel is True
    assert found.host == [("10.0.0.5", 26379), ("10.0.0.6", 26379)]
    assert found.sentinel_master == "sync"
    assert (found.database, found.username, found.password, found.ssl) == (4, "svc", "pw", True)

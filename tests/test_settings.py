"""Settings are read once from the environment and fail fast; secrets never show."""

from __future__ import annotations

import re
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from app.clients.egress import AddressNotAllowed, EgressPolicy
from app.settings import Settings, SettingsError

BASE = {"REDIS_URL": "redis://r/0", "ADMIN_TOKEN": "adm-secret-0123456789", "SECRETS_KEY": "k1, k2"}
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("missing", sorted(BASE))
def test_a_missing_required_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(SettingsError, match=missing):
        Settings.from_env(env)


def test_defaults_and_key_list() -> None:
    settings = Settings.from_env(BASE)
    assert settings.lucca_url_template == "https://{subdomain}.{domain}"
    assert settings.allow_http_elevo is False
    assert [k.reveal() for k in settings.secrets_keys] == ["k1", "k2"]
    assert settings.lucca_budget_override is None
    assert settings.session_key is None  # the console is off
    assert settings.public_url is None
    assert settings.lucca_batch_hold_seconds == 0.05
    assert settings.lucca_batch_busy_window_seconds == 0.02
    assert settings.runs_worker_nice == 10
    assert Settings.from_env(BASE | {"RUNS_WORKER_NICE": "0"}).runs_worker_nice == 0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ALLOW_HTTP_ELEVO", "maybe", "true or false"),
        ("PORT", "eighty", "a number"),
        ("USER_COOLDOWN_SECONDS", "-1", "negative"),
        ("LUCCA_URL_TEMPLATE", "https://lucca.example", "{subdomain}"),
        ("ADMIN_TOKEN", "short", "at least 16"),
        ("SESSION_KEY", "too-short-a-key", "at least 32"),
    ],
)
def test_a_malformed_value_is_refused(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env(BASE | {name: value})


def test_the_repr_shows_no_secret() -> None:
    shown = repr(Settings.from_env(BASE | {"SESSION_KEY": "session-key-0123456789abcdef012345"}))
    assert "session-key-0123456789abcdef012345" not in shown
    assert "adm-secret-0123456789" not in shown
    assert "k1" not in shown


def test_env_example_lists_every_variable_the_settings_read() -> None:
    source = (ROOT / "app/settings.py").read_text()
    read = set(re.findall(r'env(?:iron)?(?:, |\.get\()"([A-Z_]+)"', source))
    listed = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "the pattern found no variable: update this test"
    assert read == listed


def test_the_procfile_has_the_two_processes_of_the_contract() -> None:
    lines = dict(
        line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    assert "app.main:create_app" in lines["web"]
    assert "$PORT" in lines["web"]
    assert lines["worker"].startswith("arq workers.settings.WorkerSettings")


def test_elevo_allowed_networks_and_the_egress_policy() -> None:
    default = Settings.from_env(BASE).egress_policy()
    assert default == EgressPolicy(allow_loopback=False, allowed_networks=())
    settings = Settings.from_env(
        BASE | {"ALLOW_HTTP_ELEVO": "true", "ELEVO_ALLOWED_NETWORKS": "10.0.0.0/8, fd00::/8"}
    )
    assert settings.elevo_allowed_networks == (
        ip_network("10.0.0.0/8"),
        ip_network("fd00::/8"),
    )
    policy = settings.egress_policy()
    assert policy.allow_loopback is True
    policy.check(ip_address("10.1.2.3"))
    with pytest.raises(AddressNotAllowed):
        policy.check(ip_address("192.168.1.1"))


@pytest.mark.parametrize("bad", ["10.0.0.1/8", "10.0.0.0/8,not-a-network", "fd00::/129"])
def test_a_bad_allowed_network_stops_the_start(bad: str) -> None:
    with pytest.raises(SettingsError, match="ELEVO_ALLOWED_NETWORKS") as caught:
        Settings.from_env(BASE | {"ELEVO_ALLOWED_NETWORKS": bad})
    assert bad.split(",")[-1] in str(caught.value)


def test_public_url_and_the_webhook_api_settings() -> None:
    settings = Settings.from_env(BASE)
    assert settings.public_url is None
    assert settings.lucca_token_url == "https://accounts.world.luccasoftware.com/connect/token"
    assert settings.webhook_watch_seconds == 300.0
    given = Settings.from_env(
        BASE | {"PUBLIC_URL": "https://sync.example.com/", "WEBHOOK_WATCH_SECONDS": "60"}
    )
    assert given.public_url == "https://sync.example.com"
    assert given.webhook_watch_seconds == 60.0


@pytest.mark.parametrize("bad", ["sync.example.com", "ftp://sync.example.com", "https://s/?q=1"])
def test_a_malformed_public_url_stops_the_start(bad: str) -> None:
    with pytest.raises(SettingsError, match="PUBLIC_URL"):
        Settings.from_env(BASE | {"PUBLIC_URL": bad})


def test_redis_sentinels_and_their_master() -> None:
    settings = Settings.from_env(
        BASE
        | {
            "REDIS_URL": "redis://:pw@ignored:6379/3",
            "REDIS_SENTINELS": "10.0.0.5:26379, sentinel-b:26380,[fd00::5]:26381",
            "REDIS_SENTINEL_MASTER": "sync",
        }
    )
    assert settings.redis_sentinels == (
        ("10.0.0.5", 26379),
        ("sentinel-b", 26380),
        ("fd00::5", 26381),
    )
    assert settings.redis_sentinel_master == "sync"
    assert Settings.from_env(BASE).redis_sentinels == ()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REDIS_SENTINELS": "10.0.0.5"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "10.0.0.5:port"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "10.0.0.5:70000"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "fd00::5:26379"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "a:1,:2"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "a:26379"}, "REDIS_SENTINEL_MASTER"),
        ({"REDIS_SENTINEL_MASTER": "sync"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "a:26379", "REDIS_SENTINEL_MASTER": "my master"}, "one word"),
        (
            {"REDIS_SENTINELS": "a:1", "REDIS_SENTINEL_MASTER": "m", "REDIS_URL": "unix:///r.sock"},
            "REDIS_URL",
        ),
    ],
)
def test_a_bad_sentinel_configuration_stops_the_start(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(named)):
        Settings.from_env(BASE | env)


def test_a_webhook_run_is_kept_three_days_at_most_as_long_as_any_run() -> None:
    assert Settings.from_env(BASE).webhook_run_retention_seconds == 3 * 24 * 3600
    # A shorter RUN_RETENTION_SECONDS shortens the default with it.
    assert (
        Settings.from_env(BASE | {"RUN_RETENTION_SECONDS": "3600"}).webhook_run_retention_seconds
        == 3600
    )
    for bad in ("0", "2592001"):
        with pytest.raises(SettingsError, match="WEBHOOK_RUN_RETENTION_SECONDS must be above 0"):
            Settings.from_env(BASE | {"WEBHOOK_RUN_RETENTION_SECONDS": bad})

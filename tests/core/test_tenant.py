"""The nightly time of a tenant whose config names none (app/core/tenant.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter

from app.core.tenant import TenantConfig, default_nightly_at
from app.secret import Secret

FLEET = [f"tenant-{n:04d}" for n in range(1000)]


def config(tenant: str, nightly_at: str = "") -> TenantConfig:
    return TenantConfig(
        tenant=tenant,
        lucca_subdomain="acme",
        lucca_api_key=Secret("k" * 16),
        elevo_scim_url="https://scim.elevo.example/acme/v2",
        elevo_token=Secret("t" * 16),
        nightly_at=nightly_at,
    )


def minutes(at: str) -> int:
    hour, minute = at.split(":")
    return int(hour) * 60 + int(minute)


def test_every_default_is_a_minute_of_the_night_window() -> None:
    for tenant in FLEET:
        at = default_nightly_at(tenant)
        assert re.fullmatch(r"\d\d:\d\d", at)
        assert 60 <= minutes(at) <= 4 * 60 + 59


def test_a_fleet_spreads_over_the_window() -> None:
    """1,000 tenants over 240 minutes: about 4 a minute, none crowded, most minutes used."""
    per_minute = Counter(default_nightly_at(tenant) for tenant in FLEET)
    assert len(per_minute) > 200
    assert max(per_minute.values()) <= 15


def test_the_default_is_the_same_in_another_process() -> None:
    """Every worker must agree on the minute: no per-process salted hash."""
    code = "from app.core.tenant import default_nightly_at as d; print(d('acme'), d('globex'))"
    env = os.environ | {"PYTHONHASHSEED": "12345"}
    out = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    assert out.stdout.split() == [default_nightly_at("acme"), default_nightly_at("globex")]


def test_a_config_without_nightly_at_takes_its_tenants_default() -> None:
    assert config("acme").nightly_at == default_nightly_at("acme")
    assert config("globex").nightly_at == default_nightly_at("globex")


def test_an_explicit_nightly_at_wins() -> None:
    assert config("acme", nightly_at="23:30").nightly_at == "23:30"

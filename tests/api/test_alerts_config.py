"""The alerts keys of a tenant config: `alerts_url` under the SCIM URL's rules, its secret
required, kept when omitted or sent as "***", removable only without a URL."""

from __future__ import annotations

import pytest

from app.secret import Secret
from tests.api.test_schemas import body, parse, rejects

URL = "https://alerts.elevo.example/sync"
SECRET = "alerts-secret-345"


def test_an_alerts_url_comes_with_its_secret_and_a_threshold() -> None:
    config = parse(body(alerts_url=URL, alerts_secret=SECRET, alerts_failed_runs=5))
    assert (config.alerts_url, config.alerts_secret, config.alerts_failed_runs) == (
        URL,
        Secret(SECRET),
        5,
    )
    rejects(body(alerts_url=URL), "$.alerts_secret", match="required")
    rejects(body(alerts_url=URL, alerts_secret=None), "$.alerts_secret", match="required")


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://alerts.elevo.example/sync", "https"),
        ("https://127.0.0.1/sync", "private or local"),
        ("https://169.254.169.254/latest", "private or local"),
        ("https://user:pw@alerts.elevo.example/", "user information"),
        ("https://alerts.elevo.example/?token=1", "query"),
    ],
)
def test_an_alerts_url_obeys_the_scim_urls_rules(url: str, rule: str) -> None:
    error = rejects(body(alerts_url=url, alerts_secret=SECRET), "$.alerts_url")
    assert rule in str(error)


def test_loopback_and_http_only_with_allow_http() -> None:
    config = parse(
        body(alerts_url="http://127.0.0.1:9000/hook", alerts_secret=SECRET), allow_http=True
    )
    assert config.alerts_url == "http://127.0.0.1:9000/hook"


def test_the_secret_is_kept_when_omitted_or_redacted_and_removed_by_null() -> None:
    stored = parse(body(alerts_url=URL, alerts_secret=SECRET))
    for kept in (body(alerts_url=URL), body(alerts_url=URL, alerts_secret="***")):
        assert parse(kept, existing=stored).alerts_secret == Secret(SECRET)
    removed = parse(body(alerts_secret=None), existing=stored)
    assert (removed.alerts_url, removed.alerts_secret) == (None, None)


def test_the_threshold_is_bounded_and_the_secret_header_safe() -> None:
    rejects(body(alerts_failed_runs=0), "$.alerts_failed_runs")
    rejects(body(alerts_url=URL, alerts_secret="a\nb"), "$.alerts_secret")

from __future__ import annotations

import copy
import re
from typing import Any

import orjson
import pytest

from app.clients.egress import EgressPolicy
from app.core.tenant import GuardConfig, TenantConfig, default_nightly_at
from app.schemas.errors import InvalidDocument, InvalidName, NotJson
from app.schemas.tenant import parse_tenant, tenant_view, validate_tenant_name
from app.secret import Secret

API_KEY = "lucca-api-key-123"
ELEVO_TOKEN = "elevo-token-456"
WEBHOOK = "webhook-secret-789"


def body(**overrides: Any) -> dict[str, Any]:
    """The minimal valid body; `lucca`/`elevo` overrides merge into their objects."""
    result: dict[str, Any] = {
        "lucca": {"subdomain": "acme", "api_key": API_KEY},
        "elevo": {"scim_url": "https://scim.elevo.example/acme/v2", "token": ELEVO_TOKEN},
    }
    for key, value in overrides.items():
        if key in ("lucca", "elevo") and isinstance(value, dict):
            result[key] = {**result[key], **value}
        else:
            result[key] = value
    return result


def parse(
    value: object,
    *,
    tenant: str = "acme",
    existing: TenantConfig | None = None,
    allow_http: bool = False,
) -> TenantConfig:
    return parse_tenant(
        tenant,
        value,
        existing=existing,
        allow_http_elevo=allow_http,
        egress=EgressPolicy(allow_loopback=allow_http),
    )


def names_the_path(detail: str, path: str) -> bool:
    """msgspec's `... - at `$.a.b``, `$.a.b[0]` or `in `$.a.b``; ours `$.a.b is ...`; or a
    Struct's own check, "`b` ... - at `$.a`"."""
    parent, _, leaf = path.rpartition(".")
    return (
        re.search(rf"`{re.escape(path)}(\[|`)", detail) is not None
        or detail.startswith(f"{path} ")
        or (f"`{leaf}`" in detail and detail.endswith(f" - at `{parent}`"))
    )


def rejects(value: object, path: str, match: str | None = None, **kwargs: Any) -> InvalidDocument:
    with pytest.raises(InvalidDocument, match=match) as info:
        parse(value, **kwargs)
    error = info.value
    assert type(error) is InvalidDocument  # not NotJson, nor InvalidName
    assert names_the_path(str(error), path), (str(error), path)
    for secret in (API_KEY, ELEVO_TOKEN, WEBHOOK):
        assert secret not in str(error)
    return error


def without(path: str) -> dict[str, Any]:
    result = body()
    head, _, tail = path.partition(".")
    if tail:
        del result[head][tail]
    else:
        del result[head]
    return result


# -- the minimal body and its defaults --------------------------------------------------------


def test_minimal_body_takes_the_documented_defaults() -> None:
    config = parse(body())
    assert config == TenantConfig(
        tenant="acme",
        lucca_subdomain="acme",
        lucca_api_key=Secret(API_KEY),
        elevo_scim_url="https://scim.elevo.example/acme/v2",
        elevo_token=Secret(ELEVO_TOKEN),
        lucca_domain="ilucca.net",
        webhook_secrets=(),
        skip_field="e_skip_elevo_sync",
        custom_fields={},
        timezone="Europe/Paris",
        nightly_at=default_nightly_at("acme"),
        guard=GuardConfig(max_suspend_ratio=0.10, max_suspend_count=5),
        lucca_requests_per_minute=40,
        poll_interval_seconds=None,
    )


def test_full_body_of_the_contract() -> None:
    config = parse(
        body(
            lucca={"domain": "ilucca-test.net", "webhook_secret": WEBHOOK},
            skip_field="e_skip",
            custom_fields={
                "cost_center": "extendedData.e_cost_center",
                "site": "legalEntity.name",
            },
            timezone="America/New_York",
            nightly_at="23:59",
            guard={"max_suspend_ratio": 0.5, "max_suspend_count": 0},
            lucca_requests_per_minute=50,
            poll_interval_seconds=30,
        )
    )
    assert config.lucca_domain == "ilucca-test.net"
    assert config.webhook_secrets == (Secret(WEBHOOK),)
    assert config.skip_field == "e_skip"
    assert config.custom_fields == {
        "cost_center": "extendedData.e_cost_center",
        "site": "legalEntity.name",
    }
    assert config.timezone == "America/New_York"
    assert config.nightly_at == "23:59"
    assert config.guard == GuardConfig(max_suspend_ratio=0.5, max_suspend_count=0)
    assert config.lucca_requests_per_minute == 50
    assert config.poll_interval_seconds == 30


@pytest.mark.parametrize(
    "key",
    [
        "skip_field",
        "custom_fields",
        "timezone",
        "nightly_at",
        "guard",
        "lucca_requests_per_minute",
        "poll_interval_seconds",
    ],
)
def test_null_optional_key_takes_its_default(key: str) -> None:
    assert parse(body(**{key: None})) == parse(body())


def test_null_domain_takes_the_default() -> None:
    assert parse(body(lucca={"domain": None})).lucca_domain == "ilucca.net"


# -- the body's shape -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, [], "x", 1, True])
def test_body_must_be_an_object(value: object) -> None:
    rejects(value, "$", "Expected `object`")


@pytest.mark.parametrize("field", ["lucca", "elevo"])
@pytest.mark.parametrize("value", [None, [], "acme", 3])
def test_sections_must_be_objects(field: str, value: object) -> None:
    # null for a section is "missing" (required), any other non-object is the wrong type.
    rejects(body(**{field: value}), f"$.{field}", "Expected `object`")


@pytest.mark.parametrize(
    "path",
    ["lucca", "elevo", "lucca.subdomain", "lucca.api_key", "elevo.scim_url", "elevo.token"],
)
def test_each_required_field(path: str) -> None:
    rejects(without(path), f"$.{path}", "required")


@pytest.mark.parametrize("path", ["lucca.subdomain", "lucca.api_key", "elevo.scim_url"])
def test_required_field_null(path: str) -> None:
    head, _, tail = path.partition(".")
    rejects(body(**{head: {tail: None}}), f"$.{path}", "(required|got `null`)")


def test_unknown_top_level_keys_are_named() -> None:
    error = rejects(body(extra=1, another=2), "$.extra", "unknown field")
    assert "extra" in str(error)


@pytest.mark.parametrize(
    ("section", "name"),
    [("lucca", "lucca.url"), ("elevo", "elevo.base_url"), ("guard", "guard.max")],
)
def test_unknown_nested_keys_are_named(section: str, name: str) -> None:
    rejects(body(**{section: {name.partition(".")[2]: 1}}), f"$.{name}", "unknown field")


def test_unknown_key_names_are_truncated() -> None:
    error = rejects(body(**{"k" * 1000: 1}), "$", "unknown field")
    assert len(str(error)) < 200


def test_tenant_view_is_the_request_shape() -> None:
    """Every key the view shows is accepted back: a GET body can be PUT again."""
    config = parse(body(lucca={"webhook_secret": [WEBHOOK, "old"]}))
    assert parse(tenant_view(config), existing=config) == config


# -- tenant name ------------------------------------------------------------------------------


@pytest.mark.parametrize("tenant", ["acme", "a", "0", "acme-corp-2", "a" * 63, "9-"])
def test_valid_tenant_names(tenant: str) -> None:
    assert validate_tenant_name(tenant) == tenant
    assert parse(body(), tenant=tenant).tenant == tenant


@pytest.mark.parametrize(
    "tenant",
    ["", "-acme", "Acme", "a" * 64, "ac me", "acme.corp", "acme/x", "acme:x", "acme\n", "é", "a_b"],
)
def test_invalid_tenant_names(tenant: str) -> None:
    with pytest.raises(InvalidName):
        parse(body(), tenant=tenant)
    with pytest.raises(InvalidName):
        validate_tenant_name(tenant)


# -- lucca.subdomain (SSRF) -------------------------------------------------------------------


@pytest.mark.parametrize("subdomain", ["acme", "a", "a-b", "acme2", "0", "a" * 63])
def test_valid_subdomains(subdomain: str) -> None:
    assert parse(body(lucca={"subdomain": subdomain})).lucca_subdomain == subdomain


@pytest.mark.parametrize(
    "subdomain",
    [
        "evil.com/x",
        "a.b",
        "127.0.0.1",
        "acme@evil",
        "Acme",
        "ACME",
        "acme.ilucca.net",
        "https://acme.ilucca.net",
        "acme:443",
        "acme%2e",
        "acme/",
        "-acme",
        "acme-",
        "a" * 64,
        "",
        " acme",
        "acme\n",
        "ac me",
        "[::1]",
        "localhost#",
        "acme?x=1",
        "ácme",
    ],
)
def test_ssrf_subdomains_are_rejected(subdomain: str) -> None:
    rejects(body(lucca={"subdomain": subdomain}), "$.lucca.subdomain")


@pytest.mark.parametrize("value", [1, ["acme"], {"a": 1}, True])
def test_subdomain_must_be_a_string(value: object) -> None:
    rejects(body(lucca={"subdomain": value}), "$.lucca.subdomain", "Expected `str`")


# -- lucca.domain -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "domain", ["ilucca.net", "ilucca-test.net", "ilucca-demo.net", "ilucca.ch"]
)
def test_lucca_domains(domain: str) -> None:
    assert parse(body(lucca={"domain": domain})).lucca_domain == domain


@pytest.mark.parametrize("domain", ["evil.com", "ILUCCA.NET", "ilucca.net.", "", 1, ["ilucca.net"]])
def test_other_lucca_domains_are_rejected(domain: object) -> None:
    rejects(body(lucca={"domain": domain}), "$.lucca.domain")


# -- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["api_key", "token"])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1, "Expected `str"),
        (["k"], "Expected `str"),
        ("", "length >= 1"),
        ("   ", "must not be empty"),
        ("line\nbreak", "(matching regex|control characters)"),
        ("tab\there", "matching regex"),
        ("x" * 4097, "length <= 4096"),
        (" key", "must not start or end with spaces"),
        ("key ", "must not start or end with spaces"),
        ("clé-secrète", "printable ASCII"),
        ("key\u00a0more", "printable ASCII"),
        ("key\u2028more", "printable ASCII"),
    ],
)
def test_bad_secrets(field: str, value: object, message: str) -> None:
    section = "lucca" if field == "api_key" else "elevo"
    rejects(body(**{section: {field: value}}), f"$.{section}.{field}", message)


def test_a_webhook_secret_need_not_travel_in_a_header() -> None:
    # It keys an HMAC, never sent: any text but control characters will do.
    config = parse(body(lucca={"webhook_secret": "clé secrète "}))
    assert config.webhook_secrets == (Secret("clé secrète "),)


def test_a_bad_secret_is_never_echoed() -> None:
    bad = "secret\nvalue-that-must-not-leak"
    with pytest.raises(InvalidDocument) as info:
        parse(body(lucca={"api_key": bad}))
    assert "must-not-leak" not in str(info.value)


def test_webhook_secret_string() -> None:
    assert parse(body(lucca={"webhook_secret": WEBHOOK})).webhook_secrets == (Secret(WEBHOOK),)


def test_webhook_secret_list_keeps_its_order() -> None:
    config = parse(body(lucca={"webhook_secret": ["new", "old", "older"]}))
    assert config.webhook_secrets == (Secret("new"), Secret("old"), Secret("older"))


@pytest.mark.parametrize("value", [None, []])
def test_webhook_secret_null_or_empty_removes_it(value: object) -> None:
    existing = parse(body(lucca={"webhook_secret": WEBHOOK}))
    assert parse(body(lucca={"webhook_secret": value}), existing=existing).webhook_secrets == ()


@pytest.mark.parametrize(
    ("value", "path", "message"),
    [
        (1, "$.lucca.webhook_secret", "Expected `str | array | null`"),
        ({"a": "b"}, "$.lucca.webhook_secret", "Expected `str | array | null`"),
        (["ok", 2], "$.lucca.webhook_secret[1]", "Expected `str`"),
        (["ok", ""], "$.lucca.webhook_secret[1]", "length >= 1"),
        ("", "$.lucca.webhook_secret", "length >= 1"),
        (["same", "same"], "$.lucca.webhook_secret", "a secret twice"),
        (["***", "new"], "$.lucca.webhook_secret", "cannot mix"),
    ],
)
def test_bad_webhook_secrets(value: object, path: str, message: str) -> None:
    rejects(body(lucca={"webhook_secret": value}), path, message)


def stored() -> TenantConfig:
    return parse(
        body(
            lucca={"api_key": "stored-key", "webhook_secret": ["stored-new", "stored-old"]},
            elevo={"token": "stored-token"},
        )
    )


@pytest.mark.parametrize("how", ["omitted", "redacted"])
def test_omitted_or_redacted_secrets_keep_the_stored_ones(how: str) -> None:
    new = body(lucca={"subdomain": "acme2"})
    if how == "omitted":
        del new["lucca"]["api_key"]
        del new["elevo"]["token"]
    else:
        new["lucca"]["api_key"] = "***"
        new["lucca"]["webhook_secret"] = ["***", "***"]
        new["elevo"]["token"] = "***"
    config = parse(new, existing=stored())
    assert config.lucca_subdomain == "acme2"
    assert config.lucca_api_key == Secret("stored-key")
    assert config.elevo_token == Secret("stored-token")
    assert config.webhook_secrets == (Secret("stored-new"), Secret("stored-old"))


def test_sent_secrets_replace_the_stored_ones() -> None:
    config = parse(body(lucca={"webhook_secret": "w"}), existing=stored())
    assert config.lucca_api_key == Secret(API_KEY)
    assert config.elevo_token == Secret(ELEVO_TOKEN)
    assert config.webhook_secrets == (Secret("w"),)


def test_a_required_secret_cannot_be_removed_by_null() -> None:
    rejects(body(lucca={"api_key": None}), "$.lucca.api_key", "is required", existing=stored())
    rejects(body(elevo={"token": None}), "$.elevo.token", "is required", existing=stored())


@pytest.mark.parametrize("path", ["lucca.api_key", "elevo.token"])
def test_redacted_secret_without_a_stored_one_is_required(path: str) -> None:
    head, _, tail = path.partition(".")
    rejects(body(**{head: {tail: "***"}}), f"$.{path}", "is required")


def test_non_secret_fields_are_not_kept_from_the_stored_config() -> None:
    existing = parse(body(timezone="Asia/Tokyo", custom_fields={"a": "b"}))
    config = parse(body(), existing=existing)
    assert config.timezone == "Europe/Paris"
    assert config.custom_fields == {}


# -- elevo.scim_url ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "stored_as"),
    [
        ("https://scim.elevo.example/acme/v2", "https://scim.elevo.example/acme/v2"),
        ("https://scim.elevo.example/acme/v2/", "https://scim.elevo.example/acme/v2"),
        ("HTTPS://SCIM.Elevo.Example:8443/v2", "https://scim.elevo.example:8443/v2"),
        ("https://scim.elevo.example", "https://scim.elevo.example"),
        ("https://[2606:4700::1111]:8443/scim", "https://[2606:4700::1111]:8443/scim"),
        ("https://93.184.216.34/scim", "https://93.184.216.34/scim"),
    ],
)
def test_https_scim_urls(url: str, stored_as: str) -> None:
    assert parse(body(elevo={"scim_url": url})).elevo_scim_url == stored_as


def test_http_scim_url_needs_the_allow_flag() -> None:
    url = "http://127.0.0.1:8090/acme/v2"
    rejects(body(elevo={"scim_url": url}), "$.elevo.scim_url", "must be an absolute https URL")
    assert parse(body(elevo={"scim_url": url}), allow_http=True).elevo_scim_url == url


@pytest.mark.parametrize("allow_http", [False, True])
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://scim.elevo.example/v2", "must be an absolute http"),
        ("file:///etc/passwd", "must be an absolute http"),
        ("javascript:alert(1)", "must be an absolute http"),
        ("//scim.elevo.example/v2", "must be an absolute http"),
        ("/acme/v2", "must be an absolute http"),
        ("scim.elevo.example/v2", "must be an absolute http"),
        ("https://", "with a host"),
        ("https:///v2", "with a host"),
        ("https://user:pw@scim.elevo.example/v2", "user information"),
        ("https://user@scim.elevo.example/v2", "user information"),
        ("https://scim.elevo.example@evil.com/v2", "user information"),
        ("https://scim.elevo.example/v2?x=1", "query or a fragment"),
        ("https://scim.elevo.example/v2?", "query or a fragment"),
        ("https://scim.elevo.example/v2#frag", "query or a fragment"),
        ("https://scim.elevo.example:99999/v2", "must be an absolute http"),
        ("https://scim.elevo.example:x/v2", "must be an absolute http"),
        ("https://scim elevo.example/v2", "spaces or control characters"),
        ("https://scim.elevo.example/v2\n", "spaces or control characters"),
        ("https://sc%69m.elevo.example/v2", "with a host"),
        ("https://scim..elevo.example/v2", "with a host"),
        ("https://scim_elevo.example/v2", "with a host"),
        ("", "must be an absolute http"),
    ],
)
def test_bad_scim_urls(url: str, message: str, allow_http: bool) -> None:
    # msgspec refuses what does not even start as http(s):// with its own message.
    message = f"({message}|matching regex)"
    rejects(body(elevo={"scim_url": url}), "$.elevo.scim_url", message, allow_http=allow_http)


def test_scim_url_must_be_a_string() -> None:
    rejects(body(elevo={"scim_url": ["https://a"]}), "$.elevo.scim_url", "Expected `str`")


# -- skip_field, custom_fields ----------------------------------------------------------------


@pytest.mark.parametrize("code", ["e_skip_elevo_sync", "E_X", "e_1", "x"])
def test_valid_skip_fields(code: str) -> None:
    assert parse(body(skip_field=code)).skip_field == code


@pytest.mark.parametrize(
    "code", ["", "e-skip", "e skip", "extendedData.e_skip", "é", "e_x\n", 1, ["e_x"], "x" * 101]
)
def test_bad_skip_fields(code: object) -> None:
    rejects(body(skip_field=code), "$.skip_field")


@pytest.mark.parametrize(
    "path",
    ["legalEntity.name", "extendedData.e_cost_center", "jobTitle", "a.b.c", "_x.Y_2"],
)
def test_valid_custom_field_paths(path: str) -> None:
    assert parse(body(custom_fields={"Centre de coût": path})).custom_fields == {
        "Centre de coût": path
    }


@pytest.mark.parametrize(
    "path",
    ["", ".", "a.", ".a", "a..b", "1a", "a.1b", "a-b", "a b", "a/b", "a.b.c.d.e.f.g.h.i", 1, None],
)
def test_bad_custom_field_paths(path: object) -> None:
    rejects(body(custom_fields={"cost": path}), "$.custom_fields")


@pytest.mark.parametrize("name", ["", " ", 'a"b', "a\\b", "a\nb", "x" * 129])
def test_bad_custom_field_names(name: str) -> None:
    rejects(body(custom_fields={name: "legalEntity.name"}), "$.custom_fields")


@pytest.mark.parametrize("value", [[], "a", 1])
def test_custom_fields_must_be_an_object(value: object) -> None:
    rejects(body(custom_fields=value), "$.custom_fields", "Expected `object | null`")


def test_custom_fields_count_is_bounded() -> None:
    many = {f"f{i}": "legalEntity.name" for i in range(101)}
    rejects(body(custom_fields=many), "$.custom_fields", "length <= 100")


# -- timezone, nightly_at ---------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["Europe/Paris", "UTC", "America/Argentina/Buenos_Aires"])
def test_valid_timezones(zone: str) -> None:
    assert parse(body(timezone=zone)).timezone == zone


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "europe/paris", "", "../../etc/passwd", "/etc/localtime", "+02:00", 1]
)
def test_bad_timezones(zone: object) -> None:
    rejects(body(timezone=zone), "$.timezone")


@pytest.mark.parametrize("at", ["00:00", "02:00", "09:30", "23:59"])
def test_valid_nightly_times(at: str) -> None:
    assert parse(body(nightly_at=at)).nightly_at == at


@pytest.mark.parametrize("at", ["24:00", "2:00", "02:60", "0200", "02:00:00", "", 200, "ab:cd"])
def test_bad_nightly_times(at: object) -> None:
    rejects(body(nightly_at=at), "$.nightly_at")


def test_an_omitted_nightly_time_is_the_tenants_own_minute_of_the_night() -> None:
    acme, globex = parse(body(), tenant="acme"), parse(body(), tenant="globex")
    assert acme.nightly_at == default_nightly_at("acme")
    assert globex.nightly_at == default_nightly_at("globex")
    # A PUT that omits it takes the derived time again, whatever was stored.
    assert parse(body(), tenant="acme", existing=parse(body(nightly_at="23:00"))) == acme


# -- guard, budget, poll interval -------------------------------------------------------------


@pytest.mark.parametrize("ratio", [0, 1, 0.0, 0.25, 1.0])
def test_valid_guard_ratios(ratio: float) -> None:
    guard = parse(body(guard={"max_suspend_ratio": ratio})).guard
    assert guard == GuardConfig(max_suspend_ratio=float(ratio), max_suspend_count=5)
    assert isinstance(guard.max_suspend_ratio, float)


@pytest.mark.parametrize("ratio", [-0.1, 1.01, 2, "0.1", True, float("nan"), float("inf"), []])
def test_bad_guard_ratios(ratio: object) -> None:
    rejects(body(guard={"max_suspend_ratio": ratio}), "$.guard.max_suspend_ratio")


@pytest.mark.parametrize("count", [0, 1, 5, 10_000])
def test_valid_guard_counts(count: int) -> None:
    guard = parse(body(guard={"max_suspend_count": count})).guard
    assert guard == GuardConfig(max_suspend_ratio=0.10, max_suspend_count=count)


@pytest.mark.parametrize("count", [-1, 1.5, 5.0, "5", True, False])
def test_bad_guard_counts(count: object) -> None:
    rejects(body(guard={"max_suspend_count": count}), "$.guard.max_suspend_count")


@pytest.mark.parametrize("value", [[], "x", 1])
def test_guard_must_be_an_object(value: object) -> None:
    rejects(body(guard=value), "$.guard", "Expected `object | null`")


@pytest.mark.parametrize("rpm", [1, 40, 50])
def test_valid_lucca_budgets(rpm: int) -> None:
    assert parse(body(lucca_requests_per_minute=rpm)).lucca_requests_per_minute == rpm


@pytest.mark.parametrize("rpm", [0, 51, -1, 10.0, "40", True])
def test_bad_lucca_budgets(rpm: object) -> None:
    rejects(body(lucca_requests_per_minute=rpm), "$.lucca_requests_per_minute")


@pytest.mark.parametrize("seconds", [30, 60, 86_400])
def test_valid_poll_intervals(seconds: int) -> None:
    assert parse(body(poll_interval_seconds=seconds)).poll_interval_seconds == seconds


@pytest.mark.parametrize("seconds", [0, 29, -30, 86_401, 60.0, "60", True])
def test_bad_poll_intervals(seconds: object) -> None:
    rejects(body(poll_interval_seconds=seconds), "$.poll_interval_seconds")


# -- the redacted view ------------------------------------------------------------------------


def test_view_redacts_every_secret() -> None:
    config = parse(
        body(
            lucca={"webhook_secret": WEBHOOK},
            custom_fields={"site": "legalEntity.name"},
            poll_interval_seconds=120,
            alerts_url="https://alerts.elevo.example/sync",
            alerts_secret="alerts-secret-012",
        )
    )
    assert tenant_view(config) == {
        "lucca": {
            "subdomain": "acme",
            "domain": "ilucca.net",
            "api_key": "***",
            "webhook_secret": "***",
        },
        "elevo": {"scim_url": "https://scim.elevo.example/acme/v2", "token": "***"},
        "skip_field": "e_skip_elevo_sync",
        "custom_fields": {"site": "legalEntity.name"},
        "timezone": "Europe/Paris",
        "nightly_at": default_nightly_at("acme"),
        "guard": {"max_suspend_ratio": 0.10, "max_suspend_count": 5},
        "lucca_requests_per_minute": 40,
        "poll_interval_seconds": 120,
        "alerts_url": "https://alerts.elevo.example/sync",
        "alerts_secret": "***",
        "alerts_failed_runs": 3,
    }


def test_view_of_several_and_of_no_webhook_secrets() -> None:
    several = parse(body(lucca={"webhook_secret": ["a", "b", "c"]}))
    assert tenant_view(several)["lucca"]["webhook_secret"] == ["***", "***", "***"]
    assert tenant_view(parse(body()))["lucca"]["webhook_secret"] is None


def test_view_contains_no_secret_anywhere() -> None:
    config = parse(body(lucca={"webhook_secret": [WEBHOOK, "previous-hook"]}))
    text = repr(tenant_view(config))
    for secret in (API_KEY, ELEVO_TOKEN, WEBHOOK, "previous-hook"):
        assert secret not in text


def test_parse_does_not_mutate_the_body() -> None:
    original = body(lucca={"webhook_secret": ["a", "b"]}, custom_fields={"x": "a.b"})
    sent = copy.deepcopy(original)
    parse(sent)
    assert sent == original


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/scim",
        "https://10.0.0.8/scim",
        "https://169.254.169.254/latest",
        "https://[::1]/scim",
        "https://localhost/scim",
        "https://api.localhost/scim",
    ],
)
def test_an_elevo_url_naming_an_internal_address_is_refused(url: str) -> None:
    rejects(body(elevo={"scim_url": url}), "$.elevo.scim_url", "private or local address")


def test_local_use_may_name_a_local_elevo() -> None:
    config = parse(body(elevo={"scim_url": "http://127.0.0.1:8090/acme/v2"}), allow_http=True)
    assert config.elevo_scim_url == "http://127.0.0.1:8090/acme/v2"


# -- errors name the path, never the value ----------------------------------------------------

LEAKY = "sk_live_SECRET-looking-value"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"lucca": {"subdomain": LEAKY}}, "$.lucca.subdomain"),
        ({"lucca": {"domain": LEAKY}}, "$.lucca.domain"),
        ({"lucca": {"api_key": LEAKY + "\x00"}}, "$.lucca.api_key"),
        ({"lucca": {"webhook_secret": [LEAKY, LEAKY]}}, "$.lucca.webhook_secret"),
        ({"elevo": {"scim_url": LEAKY}}, "$.elevo.scim_url"),
        ({"elevo": {"scim_url": f"https://{LEAKY}@elevo.example/v2"}}, "$.elevo.scim_url"),
        ({"skip_field": LEAKY + "!"}, "$.skip_field"),
        ({"custom_fields": {LEAKY: LEAKY + ".."}}, "$.custom_fields"),
        ({"timezone": LEAKY}, "$.timezone"),
        ({"nightly_at": LEAKY}, "$.nightly_at"),
    ],
)
def test_an_invalid_value_is_never_echoed(change: dict[str, Any], path: str) -> None:
    error = rejects(body(**change), path)
    assert "SECRET" not in str(error)


def test_bytes_are_decoded_and_non_json_is_bad_json() -> None:
    assert parse(orjson.dumps(body())) == parse(body())
    for raw in (b"{not json", b"", b"\xff\xfe", b'{"a": NaN}', b'{"g": 1e400}'):
        with pytest.raises(NotJson):
            parse(raw)

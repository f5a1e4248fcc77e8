"""SSRF: no tenant setting makes the sync call a host of its choosing.

The admin API refuses the bad values (cases.py, through PUT /tenants); here the second lines
of defence: the URL builders the clients use, configs tampered with in Redis, and the HTTP
client (no redirects, no proxy from the environment).
"""

from __future__ import annotations

import httpx
import orjson
import pytest

from app.clients.elevo import validate_scim_url
from app.clients.http import new_http_client
from app.clients.lucca import lucca_base_url
from app.settings import DEFAULT_LUCCA_URL_TEMPLATE
from app.store import keys
from tests.conftest import make_settings
from tests.security.cases import SCIM_URLS, SUBDOMAINS
from tests.security.support import ACME_WEBHOOK, ADMIN, Served, signed_headers

TEMPLATES = [DEFAULT_LUCCA_URL_TEMPLATE, "http://127.0.0.1:8081/{subdomain}"]
# The admin API refuses these too; the client-side check lets them through, harmlessly (an
# impossible port fails to connect; httpx quotes the space; an empty label does not resolve).
CLIENT_SIDE_LENIENT = {
    "https://elevo.example:99999/scim/v2",
    "https://elevo.example/scim v2",
    "https://ev..il/scim",
}


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize(("subdomain", "why"), SUBDOMAINS, ids=[w for _, w in SUBDOMAINS])
def test_the_lucca_url_builder_refuses_anything_but_a_label(
    template: str, subdomain: str, why: str
) -> None:
    with pytest.raises(ValueError, match="subdomain"):
        lucca_base_url(template, subdomain, "ilucca.net")


@pytest.mark.parametrize("template", TEMPLATES)
def test_the_lucca_url_builder_puts_a_label_where_the_template_says(template: str) -> None:
    url = httpx.URL(lucca_base_url(template, "acme", "ilucca-test.net"))
    if template == DEFAULT_LUCCA_URL_TEMPLATE:
        assert (url.scheme, url.host, url.port) == ("https", "acme.ilucca-test.net", None)
    else:
        assert (url.host, url.path) == ("127.0.0.1", "/acme")
    with pytest.raises(ValueError, match="domain"):
        lucca_base_url(template, "acme", "evil.com")


@pytest.mark.parametrize(
    ("url", "why"),
    [(u, w) for u, w in SCIM_URLS if u not in CLIENT_SIDE_LENIENT],
    ids=[w for u, w in SCIM_URLS if u not in CLIENT_SIDE_LENIENT],
)
def test_the_elevo_url_check_refuses_other_schemes_and_hosts(url: str, why: str) -> None:
    with pytest.raises(ValueError, match="Elevo SCIM URL"):
        validate_scim_url(url, allow_http=False)


def test_http_elevo_only_when_allowed() -> None:
    assert validate_scim_url("http://127.0.0.1:8090/acme/v2/", allow_http=True) == (
        "http://127.0.0.1:8090/acme/v2"
    )
    with pytest.raises(ValueError, match="https"):
        validate_scim_url("http://127.0.0.1:8090/acme/v2", allow_http=False)


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("lucca", "subdomain", "evil.com/x"),
        ("lucca", "subdomain", "127.0.0.1"),
        ("lucca", "domain", "evil.com"),
        ("elevo", "scim_url", "file:///etc/passwd"),
        ("elevo", "scim_url", "https://user:pw@evil.com/scim"),
    ],
)
async def test_a_config_tampered_with_in_redis_is_refused_on_read(
    served: Served, section: str, field: str, value: str
) -> None:
    redis = served.resources.redis
    raw = await redis.get(keys.tenant_config("acme"))
    assert raw is not None
    document = orjson.loads(raw)
    document[section][field] = value
    await redis.set(keys.tenant_config("mallory"), orjson.dumps(document))
    await redis.sadd(keys.tenants(), "mallory")
    response = await served.client.get("/tenants/mallory", headers=ADMIN)
    assert (response.status_code, response.json()["error"]) == (500, "tenant_unreadable")
    body = b'{"id": "1", "topic": "employee.updated", "data": {"id": "2"}}'
    response = await served.client.post(
        "/webhooks/lucca/mallory", content=body, headers=signed_headers(ACME_WEBHOOK, body)
    )
    assert response.status_code == 503
    assert await redis.zcard("arq:queue") == 0


async def test_the_http_client_follows_no_redirect_and_no_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://proxy.evil.example:3128")
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/evil.pem")
    client = new_http_client(make_settings())
    try:
        assert client.follow_redirects is False
        assert client.trust_env is False
        assert client._mounts == {}  # no proxy transport was mounted from the environment

        def redirect(request: httpx.Request) -> httpx.Response:
            return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest"})

        client._transport = httpx.MockTransport(redirect)
        response = await client.get("https://acme.ilucca.net/api/v3/users")
        assert response.status_code == 302  # answered as is: the redirect is not followed
        assert response.next_request is not None
    finally:
        await client.aclose()

"""Lucca and Elevo fakes and the service's Resources over them (tests/fakes.py)."""

from tests.fakes import res, tenant_ctx, upstreams  # noqa: F401

"""The command line: `python -m simulators.lucca --company acme:200:1:KEY --rate-limit 0`."""

from __future__ import annotations

import argparse

import pytest

from simulators.lucca.__main__ import _company_spec, build_registry


def test_company_spec_parses_and_keeps_colons_in_the_key():
    assert _company_spec("acme:200:7:k:with:colons") == ("acme", 200, 7, "k:with:colons")
    for bad in ("acme:200:7", "acme:lots:7:k", ":1:1:k"):
        with pytest.raises(argparse.ArgumentTypeError):
            _company_spec(bad)


def test_build_registry_applies_the_rate_limit():
    registry = build_registry([("acme", 20, 1, "k1"), ("globex", 5, 2, "k2")], 0)
    assert [(c.subdomain, len(c), c.api_key) for c in registry] == [
        ("acme", 20, "k1"),
        ("globex", 5, "k2"),
    ]
    assert all(c.limiter.limit is None for c in registry)
    assert registry.rate_limit is None
    limited = build_registry([("acme", 1, 1, "k")], 50)
    assert limited["acme"].limiter.limit == 50

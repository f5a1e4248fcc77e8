"""Run the Lucca simulator: `python -m simulators.lucca --port 8081 --company acme:200:1:KEY`.

`--company subdomain:size:seed:api_key` may be repeated; more companies can be created later
through the control API (`PUT /_control/{subdomain}`). `--rate-limit 0` disables the limit.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from simulators.lucca.app import create_lucca_app
from simulators.lucca.company import Registry
from simulators.lucca.faults import DEFAULT_RATE_LIMIT
from simulators.lucca.generator import generate_company


def _company_spec(text: str) -> tuple[str, int, int, str]:
    parts = text.split(":", 3)
    if len(parts) != 4 or not parts[0] or not parts[3]:
        raise argparse.ArgumentTypeError("expected subdomain:size:seed:api_key")
    try:
        return parts[0], int(parts[1]), int(parts[2]), parts[3]
    except ValueError:
        raise argparse.ArgumentTypeError("size and seed must be integers") from None


def build_registry(companies: Sequence[tuple[str, int, int, str]], rate_limit: int) -> Registry:
    registry = Registry(rate_limit=rate_limit or None)
    for subdomain, size, seed, api_key in companies:
        registry.add(
            generate_company(
                subdomain, size, seed=seed, api_key=api_key, rate_limit=registry.rate_limit
            )
        )
    return registry


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators.lucca", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--company",
        action="append",
        default=[],
        type=_company_spec,
        metavar="SUB:SIZE:SEED:KEY",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=DEFAULT_RATE_LIMIT,
        help="requests per rolling minute per subdomain; 0 disables",
    )
    args = parser.parse_args(argv)
    registry = build_registry(args.company, args.rate_limit)
    uvicorn.run(create_lucca_app(registry), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

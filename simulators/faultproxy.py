"""A fault-injecting HTTP reverse proxy, put in front of scim2-server by the chaos suite.

    python -m simulators.faultproxy --upstream http://127.0.0.1:8090 --port 8091 \
        --error-rate 0.05 --timeout-rate 0.02 --seed 1

Every request (other than the control API below) draws once from a seeded RNG:

- with probability `error_rate` it is answered `503` with `Retry-After`, and never forwarded;
- with probability `timeout_rate` it hangs for `hang_seconds` (longer than the client's
  timeout), and a share `forward_share` of those is forwarded upstream *before* hanging: a
  PATCH or POST that timed out on the client's side may still have been applied, which is
  what exercises the client's idempotency. The others hang without reaching the upstream;
- otherwise it is forwarded as is.

A hanging request stops hanging as soon as its client goes away. At most
`--upstream-connections` requests (default 5) are at the upstream at once; the others wait
in the proxy. The control API:

    GET    /_proxy/counters   what was injected and forwarded (see `Counters`)
    DELETE /_proxy/counters   reset them
    GET    /_proxy/faults     the current rates
    PUT    /_proxy/faults     any of {"error_rate", "timeout_rate", "forward_share",
                              "hang_seconds", "retry_after", "seed"}
    DELETE /_proxy/faults     stop injecting (the rates go to 0)
    PUT    /_proxy/holds      [{"external_id", "method", "seconds", "forward", "times"}]:
                              hold the next `times` writes (`method`, POST by default) whose
                              body carries this externalId for `seconds`, forwarding them
                              "before" the hold (the answer comes late), "after" it (Elevo
                              applies it after the client gave up) or "never"
    DELETE /_proxy/holds      hold nothing

Holds are drawn before the random faults and count as `held`.

No authentication: the proxy only listens on loopback. `/_proxy` cannot be a SCIM tenant
(tenant names start with a letter or digit).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

CONTROL_PREFIX = "/_proxy"
# Neither forwarded to the upstream nor copied back: they describe one connection only.
_HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "host", "content-length",
    }
)  # fmt: skip
# httpx hands back a decoded body: its encoding header no longer applies.
_NOT_COPIED_BACK = _HOP_BY_HOP | {"content-encoding"}
FORWARDS = ("before", "after", "never")
_FAULT_KEYS = frozenset(
    {"error_rate", "timeout_rate", "forward_share", "hang_seconds", "retry_after", "seed"}
)


@dataclass
class FaultConfig:
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    # Of the requests that time out, the share forwarded upstream before the hang.
    forward_share: float = 0.5
    hang_seconds: float = 15.0
    retry_after: int = 1
    seed: int = 0

    def validate(self) -> None:
        for name in ("error_rate", "timeout_rate", "forward_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.error_rate + self.timeout_rate > 1.0:
            raise ValueError("error_rate + timeout_rate must not exceed 1")
        if self.hang_seconds < 0 or self.retry_after < 0:
            raise ValueError("hang_seconds and retry_after must not be negative")

    def snapshot(self) -> dict[str, Any]:
        return {
            "error_rate": self.error_rate,
            "timeout_rate": self.timeout_rate,
            "forward_share": self.forward_share,
            "hang_seconds": self.hang_seconds,
            "retry_after": self.retry_after,
            "seed": self.seed,
        }


@dataclass
class Hold:
    """Writes of one employee held (`FaultProxy.holds`): a stall, or an answer lost."""

    external_id: str
    seconds: float
    forward: str = "before"
    method: str = "POST"
    times: int = 1

    @classmethod
    def parse(cls, body: Any) -> Hold:
        if not isinstance(body, dict) or not isinstance(body.get("external_id"), str):
            raise ValueError("a hold names an external_id")
        hold = cls(
            external_id=body["external_id"],
            seconds=float(body.get("seconds", 15.0)),
            forward=str(body.get("forward", "before")),
            method=str(body.get("method", "POST")).upper(),
            times=int(body.get("times", 1)),
        )
        if hold.forward not in FORWARDS or hold.seconds < 0 or hold.times < 1:
            raise ValueError(f"forward is one of {FORWARDS}; seconds >= 0; times >= 1")
        return hold

    def matches(self, method: str, body: bytes) -> bool:
        if method != self.method or not body:
            return False
        try:
            resource = orjson.loads(body)
        except orjson.JSONDecodeError:
            return False
        return isinstance(resource, dict) and resource.get("externalId") == self.external_id


@dataclass
class Counters:
    """What the proxy did; `injected_*` per HTTP method as well as in total."""

    requests: int = 0
    forwarded: int = 0
    injected_503: int = 0
    # Timed out after the upstream had the request (it may have applied it)...
    timeouts_forwarded: int = 0
    # ...and without the upstream ever seeing it.
    timeouts_dropped: int = 0
    # Clients that gave up on a hanging request before its end.
    client_gave_up: int = 0
    # Writes held by a `Hold`.
    held: int = 0
    upstream_errors: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    injected_by_method: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "forwarded": self.forwarded,
            "injected_503": self.injected_503,
            "timeouts_forwarded": self.timeouts_forwarded,
            "timeouts_dropped": self.timeouts_dropped,
            "timeouts": self.timeouts_forwarded + self.timeouts_dropped,
            "client_gave_up": self.client_gave_up,
            "held": self.held,
            "upstream_errors": self.upstream_errors,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "injected_by_method": dict(sorted(self.injected_by_method.items())),
        }


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


class FaultProxy:
    """The proxy's state: where it forwards, what it injects, what it counted."""

    def __init__(
        self, upstream: str, config: FaultConfig | None = None, *, connections: int = 5
    ) -> None:
        self.upstream = httpx.URL(upstream.rstrip("/"))
        self.connections = connections
        self.config = config or FaultConfig()
        self.config.validate()
        self.counters = Counters()
        self.holds: list[Hold] = []
        self._rng = random.Random(self.config.seed)
        self._client: httpx.AsyncClient | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        # Requests beyond `connections` wait in the proxy, as behind a real server's load
        # balancer. scim2-server (werkzeug: HTTP/1.0, a connection per request, a listen
        # backlog of 5) serves ~230 requests/s with 5 at a time and ~100/s with 20, the
        # extra connections being dropped and retried by TCP a second later. A request that
        # hangs got its answer first (or never asks): it holds no upstream connection.
        limits = httpx.Limits(max_connections=self.connections, max_keepalive_connections=None)
        timeout = httpx.Timeout(60.0, pool=None)
        async with httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False) as client:
            self._client = client
            yield
            self._client = None

    def app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        return Starlette(
            routes=[
                Route(f"{CONTROL_PREFIX}/{{resource}}", self.control, methods=methods),
                Route("/{path:path}", self.proxy, methods=methods),
            ],
            lifespan=self.lifespan,
        )

    # -- faults ---------------------------------------------------------------------------

    def set_faults(self, body: dict[str, Any]) -> None:
        unknown = set(body) - _FAULT_KEYS
        if unknown:
            raise ValueError(f"unknown key(s): {', '.join(sorted(unknown))}")
        merged = self.config.snapshot() | body
        config = FaultConfig(
            error_rate=float(merged["error_rate"]),
            timeout_rate=float(merged["timeout_rate"]),
            forward_share=float(merged["forward_share"]),
            hang_seconds=float(merged["hang_seconds"]),
            retry_after=int(merged["retry_after"]),
            seed=int(merged["seed"]),
        )
        config.validate()
        self.config = config
        if "seed" in body:
            self._rng = random.Random(config.seed)

    def clear_faults(self) -> None:
        self.set_faults({"error_rate": 0.0, "timeout_rate": 0.0})

    def _draw(self) -> tuple[str, bool]:
        """("error" | "timeout" | "pass", forward-before-hang) for one request."""
        roll = self._rng.random()
        forward_first = self._rng.random() < self.config.forward_share
        if roll < self.config.error_rate:
            return "error", False
        if roll < self.config.error_rate + self.config.timeout_rate:
            return "timeout", forward_first
        return "pass", False

    # -- handlers -------------------------------------------------------------------------

    async def control(self, request: Request) -> Response:
        resource = request.path_params["resource"]
        try:
            if resource == "counters":
                if request.method == "DELETE":
                    self.counters = Counters()
                elif request.method != "GET":
                    return _json({"error": "GET or DELETE"}, 405)
                return _json(self.counters.snapshot())
            if resource == "holds":
                return await self._control_holds(request)
            if resource == "faults":
                if request.method == "PUT":
                    body = orjson.loads(await request.body() or b"{}")
                    if not isinstance(body, dict):
                        raise ValueError("the body must be a JSON object")
                    self.set_faults(body)
                elif request.method == "DELETE":
                    self.clear_faults()
                elif request.method != "GET":
                    return _json({"error": "GET, PUT or DELETE"}, 405)
                return _json(self.config.snapshot())
        except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"error": f"no control resource {resource!r}"}, 404)

    async def proxy(self, request: Request) -> Response:
        self.counters.requests += 1
        body = await request.body()
        hold = next((h for h in self.holds if h.matches(request.method, body)), None)
        if hold is not None:
            return await self._held(hold, request, body)
        kind, forward_first = self._draw()
        if kind == "error":
            self.counters.injected_503 += 1
            self.counters.injected_by_method[f"503 {request.method}"] += 1
            response = _json(
                {"status": "503", "detail": "injected by the fault proxy"},
                status=503,
            )
            response.headers["Retry-After"] = str(self.config.retry_after)
            return self._count(response)
        if kind == "timeout":
            self.counters.injected_by_method[f"timeout {request.method}"] += 1
            answer: Response | None = None
            if forward_first:
                self.counters.timeouts_forwarded += 1
                answer = await self._forward(request, body)
            else:
                self.counters.timeouts_dropped += 1
            await self._hang(request)
            return self._count(answer or _json({"detail": "gateway timeout"}, status=504))
        return self._count(await self._forward(request, body))

    async def _control_holds(self, request: Request) -> Response:
        if request.method == "PUT":
            body = orjson.loads(await request.body() or b"[]")
            if not isinstance(body, list):
                raise ValueError("the body must be a JSON list of holds")
            self.holds = [Hold.parse(entry) for entry in body]
        elif request.method == "DELETE":
            self.holds = []
        elif request.method != "GET":
            return _json({"error": "GET, PUT or DELETE"}, 405)
        return _json([vars(hold) for hold in self.holds])

    async def _held(self, hold: Hold, request: Request, body: bytes) -> Response:
        hold.times -= 1
        if not hold.times:
            self.holds.remove(hold)
        self.counters.held += 1
        answer: Response | None = None
        if hold.forward == "before":
            answer = await self._forward(request, body)
        # The whole hold, even once the client has gone: a write "after" lands late.
        await asyncio.sleep(hold.seconds)
        if hold.forward == "after":
            answer = await self._forward(request, body)
        return self._count(answer or _json({"detail": "gateway timeout"}, status=504))

    def _count(self, response: Response) -> Response:
        self.counters.by_status[response.status_code] += 1
        return response

    async def _hang(self, request: Request) -> None:
        deadline = time.monotonic() + self.config.hang_seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            if await request.is_disconnected():
                self.counters.client_gave_up += 1
                return

    async def _forward(self, request: Request, body: bytes) -> Response:
        assert self._client is not None, "the proxy serves only inside its lifespan"
        # The raw path and query, as received: nothing re-encoded on the way through.
        raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
        query: bytes = request.scope.get("query_string", b"")
        target = raw_path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
        url = httpx.URL(str(self.upstream) + target)
        headers = [
            (name, value)
            for name, value in request.headers.items()
            if name.lower() not in _HOP_BY_HOP
        ]
        try:
            upstream = await self._client.request(
                request.method, url, content=body, headers=headers
            )
        except httpx.HTTPError as exc:
            self.counters.upstream_errors += 1
            return _json({"detail": f"upstream failed: {type(exc).__name__}"}, status=502)
        self.counters.forwarded += 1
        copied = {
            name: value
            for name, value in upstream.headers.items()
            if name.lower() not in _NOT_COPIED_BACK
        }
        return Response(upstream.content, upstream.status_code, headers=copied)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators.faultproxy", description=__doc__)
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:8090")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--error-rate", type=float, default=0.0, help="share answered 503")
    parser.add_argument("--timeout-rate", type=float, default=0.0, help="share that hang")
    parser.add_argument(
        "--forward-share", type=float, default=0.5, help="of the hanging ones, share forwarded"
    )
    parser.add_argument("--hang-seconds", type=float, default=15.0)
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After of the 503s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--upstream-connections",
        type=int,
        default=5,
        help="concurrent requests to the upstream; more wait in the proxy",
    )
    args = parser.parse_args(argv)
    config = FaultConfig(
        error_rate=args.error_rate,
        timeout_rate=args.timeout_rate,
        forward_share=args.forward_share,
        hang_seconds=args.hang_seconds,
        retry_after=args.retry_after,
        seed=args.seed,
    )
    try:
        proxy = FaultProxy(args.upstream, config, connections=args.upstream_connections)
    except ValueError as exc:
        parser.error(str(exc))
    uvicorn.run(proxy.app(), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

"""The pieces of the service on loopback, each a supervised child on a free port.

`Stack` starts them: an own redis-server, the Lucca simulator, an Elevo SCIM server (the
contract's scim2-server, or simulators/fastscim.py for speed), the fault proxy in front of it,
and the web and worker processes with the Procfile's command lines. A caller that has a Redis
already gives its URL to `service_env` instead of starting one.
"""

from __future__ import annotations

import secrets
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet

from stack.ports import StackError, free_port
from stack.processes import Child, Supervisor
from stack.procfile import ROOT, VENV_BIN, child_env, procfile_command

SCIM_CONTRACTS = ROOT / "contracts" / "elevo"


@dataclass(frozen=True)
class Credentials:
    """Fresh secrets that tie the pieces together for one run."""

    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    lucca_api_key: str = field(default_factory=lambda: f"lucca-{secrets.token_hex(12)}")
    scim_token: str = field(default_factory=lambda: f"elevo-{secrets.token_hex(12)}")
    webhook_secret: str = field(default_factory=lambda: f"whsec-{secrets.token_hex(16)}")


def scim2_server_argv(port: int, token: str) -> list[str]:
    """The contract's SCIM server (scim2-server) with Elevo's schemas, a tenant per path."""
    return [
        str(VENV_BIN / "scim2-server"),
        "--schema", str(SCIM_CONTRACTS / "schemas.json"),
        "--resource-type", str(SCIM_CONTRACTS / "resource-types.json"),
        "--bearer-token", token,
        "--dynamic-tenants",
        "--port", str(port),
    ]  # fmt: skip


def service_env(
    *, redis_url: str, lucca_url: str, admin_token: str, **overrides: str
) -> dict[str, str]:
    """The web and worker processes' environment: free ports for both, a fresh SECRETS_KEY,
    plain-HTTP Elevo allowed (everything is on loopback), then `overrides`."""
    values = {
        "REDIS_URL": redis_url,
        "ADMIN_TOKEN": admin_token,
        "SECRETS_KEY": Fernet.generate_key().decode(),
        "LUCCA_URL_TEMPLATE": f"{lucca_url}/{{subdomain}}",
        "ALLOW_HTTP_ELEVO": "true",
        "PORT": str(free_port()),
        "WORKER_METRICS_PORT": str(free_port()),
    }
    return child_env(**(values | overrides))


class Stack:
    """The processes of one run, stopped in reverse order on exit (also on errors)."""

    def __init__(self, log_dir: Path) -> None:
        self.sup = Supervisor(log_dir)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sup.stop_all()

    async def aclose(self) -> None:
        await self.sup.aclose()

    def stop(self, child: Child) -> None:
        self.sup.stop(child)

    def redis(
        self, *, data_dir: Path | None = None, name: str = "redis", replica_of: int = 0
    ) -> Child:
        """An own redis-server; with `data_dir`, an append-only file as production runs it
        (it then survives a SHUTDOWN and a start of the same child); with `replica_of`, an
        asynchronous replica of the server on that loopback port."""
        server = shutil.which("redis-server")
        if server is None:
            raise StackError("redis-server is not on PATH (apt-get install redis-server)")
        port = free_port()
        argv = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        if replica_of:
            # A replica writes the primary's snapshot to a file: in the logs, not the project.
            self.sup.log_dir.mkdir(parents=True, exist_ok=True)
            argv += ["--replicaof", "127.0.0.1", str(replica_of)]
            argv += ["--dir", str(self.sup.log_dir), "--dbfilename", f"{name}.rdb"]
        argv += ["--protected-mode", "no", "--loglevel", "warning"]
        argv += ["--maxmemory-policy", "noeviction"]
        if data_dir is None:
            argv += ["--appendonly", "no"]
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            argv += ["--dir", str(data_dir), "--appendonly", "yes", "--appendfsync", "everysec"]
        return self.sup.start(name, argv, child_env(), port=port)

    def sentinel(self, master_port: int, *, master: str, name: str, quorum: int = 2) -> Child:
        """A Redis Sentinel watching the primary on `master_port` as `master`, quick to act:
        the primary is down after 1 s without an answer, and a failover that stalls is tried
        again after 5 s (production keeps Redis' defaults, 30 s and 3 min)."""
        binary = shutil.which("redis-sentinel")
        if binary is None:
            raise StackError("redis-sentinel is not on PATH (apt-get install redis-sentinel)")
        port = free_port()
        # Sentinel rewrites its configuration file as it learns: one of its own in the logs.
        config = self.sup.log_dir / f"{name}.conf"
        self.sup.log_dir.mkdir(parents=True, exist_ok=True)
        config.write_text(
            f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.sup.log_dir}\n"
            f"sentinel monitor {master} 127.0.0.1 {master_port} {quorum}\n"
            f"sentinel down-after-milliseconds {master} 1000\n"
            f"sentinel failover-timeout {master} 5000\n"
        )
        return self.sup.start(name, [binary, str(config)], child_env(), port=port)

    def lucca(
        self, *, companies: Sequence[str] = (), rate_limit: int = 0, name: str = "lucca"
    ) -> Child:
        """The Lucca simulator; `companies` as `subdomain:size:seed:api_key`, rate limit per
        minute (0: none)."""
        port = free_port()
        argv = [sys.executable, "-m", "simulators.lucca", "--port", str(port)]
        for company in companies:
            argv += ["--company", company]
        argv += ["--rate-limit", str(rate_limit)]
        return self.sup.start(name, argv, child_env(), port=port)

    def elevo(self, kind: str, *, token: str, name: str = "") -> Child:
        """`scim2` (the contract's scim2-server) or `fast` (simulators/fastscim.py)."""
        port = free_port()
        if kind == "scim2":
            argv = scim2_server_argv(port, token)
        elif kind == "fast":
            argv = [sys.executable, "-m", "simulators.fastscim", "--port", str(port)]
            argv += ["--token", token]
        else:
            raise ValueError(f"unknown SCIM server {kind!r}")
        return self.sup.start(name or f"scim-{kind}", argv, child_env(), port=port)

    def fault_proxy(
        self, upstream: str, *, seed: int, hang_seconds: float, name: str = "proxy"
    ) -> Child:
        """simulators/faultproxy.py in front of `upstream`; faults are set through its API."""
        port = free_port()
        argv = [sys.executable, "-m", "simulators.faultproxy", "--upstream", upstream]
        argv += ["--port", str(port), "--seed", str(seed), "--hang-seconds", str(hang_seconds)]
        return self.sup.start(name, argv, child_env(), port=port)

    def web(self, env: Mapping[str, str], *, name: str = "web", restart: bool = False) -> Child:
        """The Procfile's web line on env's PORT; ready once that port answers."""
        argv = procfile_command("web", env)
        return self.sup.start(name, argv, env, port=int(env["PORT"]), restart=restart)

    def worker(
        self,
        env: Mapping[str, str],
        *,
        name: str = "worker",
        restart: bool = False,
        line: str = "worker",
    ) -> Child:
        """The Procfile's `worker:` line (or `line`, e.g. `worker-runs`); ready once its
        metrics port answers (if it has one)."""
        argv = procfile_command(line, env)
        port = int(env.get("WORKER_METRICS_PORT", "0"))
        return self.sup.start(name, argv, env, port=port, restart=restart)


def redis_url(redis: Child, db: int = 0) -> str:
    return f"redis://127.0.0.1:{redis.port}/{db}"

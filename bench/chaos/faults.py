"""What the suite does to the service: faults in Lucca and Elevo, killed workers, Redis down."""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import time
from typing import Any

from redis.exceptions import RedisError

from bench.chaos.options import ChaosOptions, Summary
from bench.chaos.pieces import ChaosStack, pending_work


async def inject_faults(chaos: ChaosStack, options: ChaosOptions) -> None:
    """Lucca answers some 500s; the proxy answers some 503s and lets some requests hang."""
    await chaos.lucca().counters(reset=True)
    await chaos.lucca().faults({"error_rate": options.lucca_error_rate, "seed": options.seed})
    proxy = f"{chaos.url('proxy')}/_proxy"
    (await chaos.http.delete(f"{proxy}/counters")).raise_for_status()
    faults = {
        "error_rate": options.proxy_error_rate,
        "timeout_rate": options.proxy_timeout_rate,
        "seed": options.seed,
    }
    (await chaos.http.put(f"{proxy}/faults", json=faults)).raise_for_status()


async def clear_faults(chaos: ChaosStack, summary: Summary) -> None:
    """No more faults; what was injected goes to the summary."""
    lucca = chaos.lucca()
    await lucca.faults(None)
    summary.lucca_counters = await lucca.counters()
    proxy = f"{chaos.url('proxy')}/_proxy"
    (await chaos.http.delete(f"{proxy}/faults")).raise_for_status()
    summary.proxy_counters = (await chaos.http.get(f"{proxy}/counters")).json()


async def lucca_429_burst(chaos: ChaosStack, options: ChaosOptions, index: int) -> None:
    """The next requests to Lucca answer 429 with Retry-After."""
    burst = {
        "status": 429,
        "count": options.lucca_429_burst_size,
        "retry_after": options.lucca_429_retry_after,
    }
    await chaos.lucca().faults({"force": burst})
    chaos.log(f"change {index}: a burst of {burst['count']} Lucca 429s")


async def kill_worker(chaos: ChaosStack, summary: Summary, rng: random.Random, index: int) -> None:
    """SIGKILL one of the two workers (its supervisor starts it again)."""
    name = rng.choice(["worker-1", "worker-2"])
    running = -1
    with contextlib.suppress(RedisError):
        assert chaos.redis is not None
        running = (await pending_work(chaos.redis))[1]
    pid = chaos.sup.kill(name)
    what = f"{name} (pid {pid}) at change {index}, {running} jobs in progress"
    summary.worker_kills.append(what if pid else f"{name} was down at change {index}")
    chaos.log(f"SIGKILL {what}")


async def _shutdown_redis(chaos: ChaosStack) -> None:
    cli = shutil.which("redis-cli")
    if cli:
        shutdown = await asyncio.create_subprocess_exec(
            cli, "-p", str(chaos.pieces["redis"].port), "shutdown",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await shutdown.wait()
    else:  # the same command through redis-py; the connection drops as it succeeds
        with contextlib.suppress(RedisError):
            assert chaos.redis is not None
            await chaos.redis.shutdown()


async def restart_redis(
    chaos: ChaosStack, summary: Summary, options: ChaosOptions, index: int
) -> None:
    """SHUTDOWN (which flushes the AOF), `redis_downtime` seconds down, then the same port and
    data directory again."""
    child = chaos.sup.children["redis"]
    child.stopping = True
    started = time.monotonic()
    await _shutdown_redis(chaos)
    child.exits.append(await asyncio.to_thread(child.popen.wait, 30))
    await asyncio.sleep(options.redis_downtime)
    chaos.sup.spawn(child)
    assert chaos.redis is not None
    redis = chaos.redis

    async def answers() -> bool:
        return bool(await redis.ping())

    await chaos.wait(answers, "redis answers again")
    down = time.monotonic() - started
    keys = await redis.dbsize()
    what = f"at change {index}: SHUTDOWN (AOF flushed), back in {down:.1f}s with {keys} keys"
    summary.redis_restarts.append(what)
    chaos.log(f"Redis restarted {what}")


async def _proxy_counters(chaos: ChaosStack) -> dict[str, Any]:
    response = await chaos.http.get(f"{chaos.url('proxy')}/_proxy/counters")
    response.raise_for_status()
    counters: dict[str, Any] = response.json()
    return counters


async def _first_request(chaos: ChaosStack, before: int, within: float) -> float:
    """Wait until the proxy meets a request after `before` of them (the service may be waiting
    on Lucca with nothing for Elevo); the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if (await _proxy_counters(chaos))["requests"] > before:
            break
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def elevo_stall(
    chaos: ChaosStack, summary: Summary, options: ChaosOptions, index: int
) -> None:
    """Elevo stalls: every request through the proxy hangs (half of them forwarded first:
    applied, their answer lost) for `elevo_stall_seconds` from the first one that meets the
    stall, then the usual faults again."""
    proxy = f"{chaos.url('proxy')}/_proxy"
    seconds = options.elevo_stall_seconds
    before = await _proxy_counters(chaos)
    stall = {"error_rate": 0.0, "timeout_rate": 1.0, "hang_seconds": seconds}
    (await chaos.http.put(f"{proxy}/faults", json=stall)).raise_for_status()
    chaos.log(f"change {index}: Elevo stalls for {seconds:.0f}s from its next request")
    idle = await _first_request(chaos, before["requests"], within=seconds)
    await asyncio.sleep(seconds)
    usual = {
        "error_rate": options.proxy_error_rate,
        "timeout_rate": options.proxy_timeout_rate,
        "hang_seconds": options.http_timeout * 3,
    }
    (await chaos.http.put(f"{proxy}/faults", json=usual)).raise_for_status()
    after = await _proxy_counters(chaos)
    hung = after["timeouts"] - before["timeouts"]
    forwarded = after["timeouts_forwarded"] - before["timeouts_forwarded"]
    summary.stall = (
        f"{seconds:.0f}s from change {index} (+{idle:.0f}s before a request met it):"
        f" {hung} of {after['requests'] - before['requests']} requests hung"
        f" ({forwarded} forwarded first: applied, their answer lost)"
    )
    chaos.log(f"Elevo answers again: {summary.stall}")


async def lucca_429_storm(
    chaos: ChaosStack, summary: Summary, options: ChaosOptions, index: int
) -> None:
    """For `lucca_storm_seconds`, Lucca answers every request of the tenant 429 with
    Retry-After, then the usual faults again."""
    lucca = chaos.lucca()
    seconds, retry_after = options.lucca_storm_seconds, options.lucca_storm_retry_after
    before = await lucca.counters()
    # More forced answers than the storm can meet: it ends when they are cleared.
    await lucca.faults({"force": {"status": 429, "count": 100_000, "retry_after": retry_after}})
    chaos.log(f"change {index}: a {seconds:.0f}s storm of Lucca 429s")
    await asyncio.sleep(seconds)
    await lucca.faults(None)
    await lucca.faults({"error_rate": options.lucca_error_rate, "seed": options.seed})
    after = await lucca.counters()
    met = int(after["by_status"].get("429", 0)) - int(before["by_status"].get("429", 0))
    summary.storm = (
        f"{seconds:.0f}s from change {index}, Retry-After {retry_after}s: {met} x 429"
        f" ({after['total'] - before['total']} requests during the storm)"
    )
    chaos.log(f"the 429 storm is over: {summary.storm}")

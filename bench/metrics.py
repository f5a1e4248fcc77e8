"""The worker's Prometheus metrics and Redis' command counts, scraped around a measurement."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.common import redis_client


@dataclass
class Metrics:
    """A scrape of one worker's /metrics."""

    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def total(self, name: str, **labels: str) -> float:
        return sum(
            value
            for sample, got, value in self.samples
            if sample == name and all(got.get(k) == v for k, v in labels.items())
        )

    def buckets(self, name: str) -> list[tuple[float, float]]:
        """Cumulative (upper bound, count) pairs of a histogram, +Inf last."""
        found = [
            (float(labels["le"]), value)
            for sample, labels, value in self.samples
            if sample == f"{name}_bucket"
        ]
        return sorted(found)


async def scrape(http: httpx.AsyncClient, port: int) -> Metrics:
    text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    metrics = Metrics()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            metrics.samples.append((sample.name, dict(sample.labels), float(sample.value)))
    return metrics


def bucket_delta(
    after: Sequence[tuple[float, float]], before: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    earlier = dict(before)
    return [(bound, count - earlier.get(bound, 0.0)) for bound, count in after]


def histogram_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket."""
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return buckets[-1][0]


async def redis_commands(url: str) -> dict[str, int]:
    """Calls per command since the server started (INFO commandstats)."""
    client = redis_client(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if isinstance(value, dict)
    }


def command_delta(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    delta = {name: calls - before.get(name, 0) for name, calls in after.items()}
    return {name: calls for name, calls in sorted(delta.items()) if calls > 0}

"""The controller's own view of a benchmark window, from its Prometheus ``/metrics``: why a window went slow."""

from __future__ import annotations

import math

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(api: str) -> Samples:
    text = httpx.get(f"http://{api}/metrics", timeout=10, trust_env=False).text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def bucket_counts(before: Samples, after: Samples, histogram: str, **labels: str) -> list[tuple[float, float]]:
    """(upper bound, count in the window) of each bucket of ``histogram`` whose labels include ``labels``."""
    found: dict[float, float] = {}
    for (name, pairs), value in after.items():
        tags = dict(pairs)
        if name == f"{histogram}_bucket" and all(tags.get(k) == v for k, v in labels.items()):
            bound = math.inf if tags["le"] == "+Inf" else float(tags["le"])
            found[bound] = found.get(bound, 0.0) + value - before.get((name, pairs), 0.0)
    return sorted(found.items())


def quantile_bound(buckets: list[tuple[float, float]], q: float) -> float:
    """The smallest bucket bound that holds the ``q`` quantile of the window's observations (nan if none)."""
    total = buckets[-1][1] if buckets else 0
    if not total:
        return math.nan
    return next(bound for bound, count in buckets if count >= q * total)


def worst_bound(buckets: list[tuple[float, float]]) -> float:
    """The bucket bound of the slowest observation in the window (0 when none)."""
    previous = 0.0
    for bound, count in reversed(buckets):
        if count < buckets[-1][1]:
            return previous
        previous = bound
    return previous if buckets and buckets[-1][1] else 0.0

"""Reading a daemon's Prometheus ``/metrics`` page the way Prometheus parses it."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str) -> dict[str, float]:
    """Every sample, keyed ``name{label="value",...}`` (labels sorted; just ``name`` without labels)."""
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - a loopback URL of our own
        text = answer.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples

"""Scraping a metrics endpoint in tests: one scrape parsed by prometheus_client's own text parser.

Shared by tests/test_metrics.py (palfrey's master) and tests/test_gunicorn_metrics.py (gunicorn's).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """One scrape, parsed by prometheus_client's own text parser."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {family.name: family for family in text_string_to_metric_families(text)}

    def samples(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        family = self.families.get(name)
        for suffix in ("_total", "_count", "_sum", "_bucket"):
            if family is None and name.endswith(suffix):
                family = self.families.get(name.removesuffix(suffix))
        if family is None:
            return []
        return [
            (sample.labels, sample.value)
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        ]

    def total(self, name: str, **labels: str) -> float:
        return sum(value for _, value in self.samples(name, **labels))

    def by(self, name: str, label: str) -> dict[str, float]:
        return {sample_labels[label]: value for sample_labels, value in self.samples(name)}


def scrape(url: str) -> Scrape:
    answer = httpx.get(url, timeout=5)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return Scrape(answer.text)


def scrape_until(url: str, condition: Callable[[Scrape], bool], timeout: float = 15.0) -> Scrape:
    """Scrape until `condition` holds; fail with the last scrape after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = scrape(url)
        if condition(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last scrape:\n{result.text}")
        time.sleep(0.05)

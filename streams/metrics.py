"""Prometheus metrics of one worker, served at ``GET /metrics``.

One registry per pipeline (not the global default), so several apps in one
process — tests, the demo — never clash. Consumer lag is computed when scraped:
for each assigned partition, the broker's high-water mark minus the offset this
worker has committed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _LagCollector(Collector):
    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "nudge_consumer_lag",
            "Messages not yet committed, per partition",
            labels=["topic", "partition"],
        )
        consumer = getattr(self.app, "_consumer", None)
        if consumer is not None:
            try:
                for tp in consumer.assignment():
                    high = consumer.highwater(tp)
                    committed = consumer._committed_offset.get(tp) or 0
                    if high is not None:
                        family.add_metric([tp.topic, str(tp.partition)], max(0, high - committed))
            except Exception:
                pass
        yield family


class Metrics:
    """The worker's metrics; agents call these, ``/metrics`` renders them."""

    def __init__(self, app: Any) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "nudge_events", "Inbound events by topic and outcome", ["topic", "outcome"], registry=r
        )
        self.rescore = Histogram(
            "nudge_rescore_seconds",
            "Time to fold one event into a lead and rescore it",
            buckets=(25e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 0.01, 0.05),
            registry=r,
        )
        self.firings = Counter(
            "nudge_playbook_firings", "Playbook rules fired", ["playbook", "rule"], registry=r
        )
        self.nudges = Counter(
            "nudge_nudges", "Nudges by channel and final state", ["channel", "state"], registry=r
        )
        self.provider_errors = Counter(
            "nudge_provider_errors",
            "Errors from SMS/Slack providers",
            ["provider", "code"],
            registry=r,
        )
        r.register(_LagCollector(app))

    def render(self) -> bytes:
        return generate_latest(self.registry)

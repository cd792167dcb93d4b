"""Prometheus metrics of one worker, served at ``GET /metrics``.

One registry per pipeline (not the global default), so several apps in one
process — tests, the demo — never clash. Consumer lag is computed when scraped
(:meth:`Metrics.refresh_lag`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _LagCollector(Collector):
    def __init__(self) -> None:
        self.lag: dict[tuple[str, int], int] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "nudge_consumer_lag",
            "Messages not yet committed, per consumed partition (at the last scrape)",
            labels=["topic", "partition"],
        )
        for (topic, partition), lag in sorted(self.lag.items()):
            family.add_metric([topic, str(partition)], lag)
        yield family


class _RefusedCollector(Collector):
    def __init__(self, source: Callable[[], dict[str, list[str]]]) -> None:
        self.source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "nudge_config_refused",
            "Playbook or questionnaire files refused, with nothing of them running",
            labels=["file"],
        )
        for file in sorted(self.source()):
            family.add_metric([file], 1)
        yield family


class Metrics:
    """The worker's metrics; agents call these, ``/metrics`` renders them."""

    def __init__(self, app: Any = None) -> None:
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
        self.rejected = Counter(
            "nudge_events_rejected",
            "Events rejected, by where they came from (http, kafka) and reason class "
            "(json, size, schema, body)",
            ["source", "reason"],
            registry=r,
        )
        self.refused = Counter(
            "nudge_http_refused",
            "HTTP requests refused before their handler, by reason "
            "(auth, rate, content_type, encoding, too_large, timeout, not_found, method), and "
            "connections closed by the connection cap (connection_cap)",
            ["reason"],
            registry=r,
        )
        self._lag = _LagCollector()
        r.register(self._lag)

    def watch_refused(self, source: Callable[[], dict[str, list[str]]]) -> None:
        """Export ``nudge_config_refused{file}``: 1 per playbook or questionnaire file refused
        with nothing of it running (read from ``source`` at each scrape)."""
        self.registry.register(_RefusedCollector(source))

    async def refresh_lag(self, app: Any, timeout: float = 2.0, intake: Any = None) -> None:
        """Recompute the lag gauge: corrected partition ends minus committed offsets.

        The ends come from the consumer's ``end_offsets``, which
        :func:`broker.correct_batch_end_offsets` corrects (Tansu under-reports them).
        Table changelogs are left out: the worker that owns a table writes its
        changelog and reads it only to recover, so no offset is ever committed there and
        their "lag" would stay at the changelog's length forever. The inbound topics'
        lag is ``intake``'s (:meth:`streams.intake.Intake.lag`), from its own consumer.
        """
        consumer = getattr(app, "_consumer", None)
        if consumer is None:
            return
        try:
            changelogs = set(app.tables.changelog_topics)
            tps = [tp for tp in consumer.assignment() if tp.topic not in changelogs]
            ends = await asyncio.wait_for(consumer.highwaters(*tps), timeout) if tps else {}
        except Exception:  # not started, rebalancing, broker away: keep the last figures
            return
        committed = consumer._committed_offset
        lag = {
            (tp.topic, tp.partition): max(0, end - (committed.get(tp) or 0))
            for tp, end in ends.items()
            if end is not None
        }
        if intake is not None:
            # not started, rebalancing, broker away: without them
            with contextlib.suppress(Exception):
                lag.update(await asyncio.wait_for(intake.lag(), timeout))
        self._lag.lag = lag

    def render(self) -> bytes:
        return generate_latest(self.registry)

"""The Faust app: topics, tables and the services the agents share.

:func:`build` returns a :class:`Pipeline`, which owns the Faust app and what the
agents need (store, scorer, playbooks, notifier, clock, counters). The agents
themselves live in :mod:`streams.agents` and stay thin: decode, call a pure
function from the packages below, hand the result on.

Consumer settings that matter (see ARCHITECTURE.md, "Known costs"): Tansu holds
each group join for half the session timeout the client sends, so Faust's 60 s
default makes a worker wait ~30 s before consuming. ``broker_session_timeout=6``
and ``broker_heartbeat_interval=1`` make it ready in ~5 s, on Tansu and on a
stock Kafka broker alike (6 s is the smallest session Kafka accepts by default).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust

from crm.store import Store
from notifiers import ConsoleNotifier, Notifier
from nudge.clock import Clock, SystemClock
from nudge.logs import get_logger
from nudge.settings import Settings
from playbooks import load_playbooks
from playbooks.model import Playbook
from scoring import Scorer
from scoring.points import PointsScorer, load_points_config
from streams.topics import INBOUND

log = get_logger(__name__)


@dataclass
class Pipeline:
    """One worker's Faust app and the services its agents share."""

    settings: Settings
    app: faust.App
    scorer: Scorer
    playbooks: list[Playbook]
    notifier: Notifier
    clock: Clock
    stats: Counter[str] = field(default_factory=Counter)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    _store: Store | None = None
    _store_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def store(self) -> Store:
        """The CRM store, opened (and migrated) on first use."""
        if self._store is None:
            async with self._store_lock:
                if self._store is None:
                    self._store = await Store.open(self.settings.database)
                    stuck = await self._store.in_flight()
                    if stuck:
                        log.warning(
                            "nudges were being sent when a worker stopped; not resending",
                            count=len(stuck),
                            nudge_ids=[r["nudge_id"] for r in stuck][:10],
                        )
        return self._store

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None
        await self.notifier.close()

    # topics, set by build()
    inbound: Any = None
    dead: Any = None
    activity: Any = None
    signals: Any = None
    nudges: Any = None
    leads: Any = None


def make_app(settings: Settings, broker_url: str) -> faust.App:
    """A Faust app configured for fast start-up and at-least-once processing."""
    datadir = Path(settings.data_dir) / "faust"
    return faust.App(
        settings.app_id,
        broker=broker_url,
        store="memory://",
        datadir=str(datadir),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        broker_commit_interval=1.0,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        table_cleanup_interval=60.0,
        stream_wait_empty=False,
    )


def build(
    settings: Settings,
    broker_url: str,
    *,
    notifier: Notifier | None = None,
    clock: Clock | None = None,
) -> Pipeline:
    """Assemble the app, its topics and tables, its agents and web views."""
    app = make_app(settings, broker_url)
    pipeline = Pipeline(
        settings=settings,
        app=app,
        scorer=PointsScorer(load_points_config(settings.scoring_rules)),
        playbooks=load_playbooks(settings.playbooks or None),
        notifier=notifier or ConsoleNotifier(),
        clock=clock or SystemClock(),
    )
    pipeline.inbound = app.topic(*INBOUND, key_serializer="raw", value_serializer="raw")
    pipeline.dead = app.topic("events.dead", key_serializer="raw", value_serializer="raw")
    pipeline.activity = app.topic("lead.activity", key_serializer="raw", value_serializer="raw")
    pipeline.signals = app.topic("lead.signals", key_serializer="raw", value_serializer="raw")
    pipeline.nudges = app.topic("nudges", key_serializer="raw", value_serializer="raw")
    pipeline.leads = app.Table("leads", default=None, partitions=settings.partitions)

    from streams import agents, views

    agents.register(pipeline)
    views.register(pipeline)
    return pipeline

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
import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust

from crm.schedules import Schedules
from crm.store import Store
from delivery import Policy, drain_due
from notifiers import Notifier, build_notifiers
from nudge.clock import Clock, SystemClock
from nudge.logs import get_logger
from nudge.settings import Settings
from nudge.signals import LeadView, RepView
from playbooks import PlaybookSet
from playbooks.model import Playbook
from playbooks.questionnaire import Questionnaire, load_questionnaires
from scoring import Scorer
from scoring.model_scorer import LiveScorer
from scoring.points import PointsScorer, load_points_config
from streams.batching import Envelopes
from streams.broker import correct_batch_end_offsets
from streams.faust_fixes import (
    fetch_only_active_partitions,
    limit_fetch_wait,
    seek_before_resuming_streams,
    seek_uncommitted_to_beginning,
)
from streams.metrics import Metrics
from streams.topics import INBOUND

log = get_logger(__name__)

LEAD_FLUSH_INTERVAL = 1.0
"""Seconds between batched writes of lead snapshots to SQLite."""
IDENTITY_CACHE_MAX = 200_000
SCHEDULER_INTERVAL = 1.0
"""Seconds between passes of the durable scheduler."""
PLAYBOOK_REFRESH_INTERVAL = 2.0
"""Seconds between checks for edited playbook files (a stat per file)."""
OUTBOX_DRAIN_INTERVAL = 5.0
"""Seconds between passes over the outbox for held and retry-queued nudges."""


@dataclass
class Pipeline:
    """One worker's Faust app and the services its agents share."""

    settings: Settings
    app: faust.App
    scorer: Scorer
    playbook_set: PlaybookSet
    questionnaires: dict[str, Questionnaire]
    notifiers: dict[str, Notifier]
    policy: Policy
    clock: Clock
    metrics: Metrics
    stats: Counter[str] = field(default_factory=Counter)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    identities: dict[tuple[str, str], str] = field(default_factory=dict)
    """(kind, value) → lead_id, a read-through cache of the contacts table."""
    dirty_leads: dict[str, tuple[LeadView, dict[str, Any] | None]] = field(default_factory=dict)
    """Lead views (and scores) waiting for the next batched write to SQLite; dumped then,
    once per lead however often it changed in between."""
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    """Score snapshots (feature state per scored event) waiting for the same write."""
    rep_cache: dict[str, tuple[dt.datetime, RepView | None]] = field(default_factory=dict)
    _store: Store | None = None
    _schedules: Schedules | None = None
    _conversation_db: Store | None = None
    _snapshot_db: Store | None = None
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

    async def schedules(self) -> Schedules:
        """The durable scheduler, on its own connection (it runs its own transactions)."""
        if self._schedules is None:
            await self.store()  # migrations first
            self._schedules = await Schedules.open(self.settings.database)
        return self._schedules

    async def conversation_db(self) -> Any:
        """A connection for the conversation agent alone (it runs its own transactions)."""
        if self._conversation_db is None:
            await self.store()
            self._conversation_db = await Store.open(self.settings.database)
        return self._conversation_db.db

    def envelopes(self) -> Envelopes:
        """A batch's outgoing items, routed like keyed sends (``streams.batching``)."""
        return Envelopes(self.app, self.settings.partitions)

    @property
    def playbooks(self) -> list[Playbook]:
        """The running playbooks (hot-reloaded; the last good version of each file)."""
        return self.playbook_set.playbooks

    async def flush_leads(self) -> int:
        """Write the lead snapshots changed since the last flush, in one transaction."""
        if not self.dirty_leads and not self.snapshots:
            return 0
        batch = [(view.model_dump(mode="json"), score) for view, score in self.dirty_leads.values()]
        self.dirty_leads = {}
        snaps, self.snapshots = self.snapshots, []
        if self._snapshot_db is None:
            # its own connection: a second's worth of snapshots takes a while to write,
            # and the agents' quick look-ups must not queue behind it on one thread
            await self.store()  # migrations first
            self._snapshot_db = await Store.open(self.settings.database)
        store = self._snapshot_db
        if batch:
            await store.save_leads(batch)
        if snaps:
            await store.save_snapshots(snaps)
        return len(batch)

    async def close(self) -> None:
        await self.flush_leads()
        for extra in (self._schedules, self._conversation_db, self._snapshot_db):
            if extra is not None:
                await extra.close()
        self._schedules = self._conversation_db = self._snapshot_db = None
        if self._store is not None:
            await self._store.close()
            self._store = None
        for notifier in self.notifiers.values():
            await notifier.close()

    # topics, set by build()
    inbound: Any = None
    dead: Any = None
    activity: Any = None
    signals: Any = None
    nudges: Any = None
    replies: Any = None
    conversations: Any = None
    crm_events: Any = None
    call_events: Any = None
    crm_updates: Any = None
    guards: Any = None
    leads: Any = None


def make_app(settings: Settings, broker_url: str) -> faust.App:
    """A Faust app configured for fast start-up and at-least-once processing."""
    datadir = Path(settings.data_dir) / "faust"
    limit_fetch_wait(settings.fetch_max_wait_ms)
    fetch_only_active_partitions()
    seek_before_resuming_streams()
    seek_uncommitted_to_beginning()
    correct_batch_end_offsets()
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
        producer_linger=settings.producer_linger_ms / 1000.0,
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
    notifiers: dict[str, Notifier] | None = None,
    clock: Clock | None = None,
) -> Pipeline:
    """Assemble the app, its topics and tables, its agents and web views."""
    app = make_app(settings, broker_url)
    pipeline = Pipeline(
        settings=settings,
        app=app,
        scorer=LiveScorer(
            settings.data_dir,
            fallback=PointsScorer(load_points_config(settings.scoring_rules)),
            min_conversions=settings.min_conversions,
        ),
        playbook_set=PlaybookSet(settings.playbooks or None),
        questionnaires=load_questionnaires(),
        notifiers=notifiers if notifiers is not None else build_notifiers(settings),
        policy=Policy.from_settings(settings),
        clock=clock or SystemClock(),
        metrics=Metrics(app),
    )
    pipeline.inbound = app.topic(*INBOUND, key_serializer="raw", value_serializer="raw")
    pipeline.dead = app.topic("events.dead", key_serializer="raw", value_serializer="raw")
    pipeline.activity = app.topic("lead.activity", key_serializer="raw", value_serializer="raw")
    pipeline.signals = app.topic("lead.signals", key_serializer="raw", value_serializer="raw")
    pipeline.nudges = app.topic("nudges", key_serializer="raw", value_serializer="raw")
    pipeline.replies = app.topic("replies", key_serializer="raw", value_serializer="raw")
    pipeline.conversations = app.topic(
        "conversations", key_serializer="raw", value_serializer="raw"
    )
    pipeline.crm_events = app.topic("crm.events", key_serializer="raw", value_serializer="raw")
    pipeline.call_events = app.topic("call.events", key_serializer="raw", value_serializer="raw")
    pipeline.crm_updates = app.topic("crm.updates", key_serializer="raw", value_serializer="raw")
    pipeline.guards = app.Table("guards", default=None, partitions=settings.partitions)
    pipeline.leads = app.Table("leads", default=None, partitions=settings.partitions)

    async def flush_leads() -> None:
        await pipeline.flush_leads()

    app.timer(LEAD_FLUSH_INTERVAL)(flush_leads)

    async def drain_outbox() -> None:
        """Send held (quiet hours) and retry-queued nudges whose time has come."""
        sent = await drain_due(
            await pipeline.store(), pipeline.notifiers, pipeline.clock.now(), policy=pipeline.policy
        )
        if sent:
            pipeline.stats["nudges.drained"] += sent

    app.timer(OUTBOX_DRAIN_INTERVAL)(drain_outbox)

    from streams import scheduler

    async def fire_schedules() -> None:
        await scheduler.fire_due(pipeline)

    async def refresh_playbooks() -> None:
        await scheduler.refresh_playbooks(pipeline)

    app.timer(SCHEDULER_INTERVAL)(fire_schedules)
    app.timer(PLAYBOOK_REFRESH_INTERVAL)(refresh_playbooks)

    from streams import agents, views

    agents.register(pipeline)
    views.register(pipeline)
    return pipeline

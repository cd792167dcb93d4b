"""Building the Faust app: its topics, tables, timers, agents, intake and web server.

:func:`build` returns a :class:`streams.pipeline.Pipeline`, which owns the Faust app
and what the agents need. The agents themselves live in :mod:`streams.agents` and
stay thin: decode, call a pure function from the packages below, hand the result on.

Consumer settings that matter (see ARCHITECTURE.md, "Known costs"): Tansu holds
each group join for half the session timeout the client sends, so Faust's 60 s
default makes a worker wait ~30 s before consuming. ``broker_heartbeat_interval=1``
and a session of 6 s (the smallest a stock Kafka accepts) with ``KAFKA_URL``, 3 s on
the embedded broker whose group has no other member
(:attr:`nudge.settings.Settings.consumer_session_timeout`), make the join wait ~3 s or ~2 s (measured).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import faust

from broker import correct_batch_end_offsets, detect_engine
from delivery import Policy, drain_due
from delivery.reconcile import reconcile_stale
from notifiers import Notifier, build_notifiers
from nudge.clock import Clock, SystemClock
from nudge.logs import get_logger
from nudge.settings import Settings
from playbooks import PlaybookSet
from playbooks.questionnaires import QuestionnaireSet, checking_asks
from scoring.model_scorer import LiveScorer
from streams import agents, crm_connectors, model_sync, scheduler
from streams.faust_fixes import (
    PromptTableManager,
    fetch_only_active_partitions,
    limit_fetch_wait,
    seek_before_resuming_streams,
    seek_uncommitted_to_beginning,
)
from streams.intake import Intake
from streams.metrics import Metrics
from streams.pipeline import Pipeline
from streams.routes import routes
from streams.server import HttpServer
from streams.topics import TOPICS
from streams.views import refused_files

log = get_logger(__name__)

LEAD_FLUSH_INTERVAL = 1.0
"""Seconds between batched writes of lead snapshots to SQLite."""
RULE_COUNTS_INTERVAL = 10.0
"""Seconds between writes of the rules' evaluation counts to the record."""
SCHEDULER_INTERVAL = 1.0
"""Seconds between passes of the durable scheduler."""
PLAYBOOK_REFRESH_INTERVAL = 2.0
"""Seconds between checks for edited playbook files (a stat per file)."""
OUTBOX_DRAIN_INTERVAL = 5.0
"""Seconds between passes over the outbox for held and retry-queued nudges."""


def make_app(settings: Settings, broker_url: str) -> faust.App:
    """A Faust app configured for fast start-up and at-least-once processing."""
    datadir = Path(settings.data_dir) / "faust"
    limit_fetch_wait(settings.fetch_max_wait_ms)
    fetch_only_active_partitions()
    seek_before_resuming_streams()
    seek_uncommitted_to_beginning()
    engine = settings.broker_engine
    if engine == "auto":
        engine = "tansu" if settings.embedded_broker else detect_engine(broker_url)
    if engine == "tansu":  # Kafka's partition ends are right: no extra fetch per end there
        correct_batch_end_offsets()
    log.info("broker engine", engine=engine)
    return faust.App(
        settings.app_id,
        broker=broker_url,
        store="memory://",
        datadir=str(datadir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        broker_session_timeout=settings.consumer_session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        broker_commit_interval=1.0,
        producer_acks=-1,
        producer_linger=settings.producer_linger_ms / 1000.0,
        consumer_auto_offset_reset="earliest",
        # the web server is streams.server.HttpServer (registered in build), which
        # replaces Faust's own: none of Faust's table, router or stats views is served
        web_enabled=True,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        table_cleanup_interval=60.0,
        stream_wait_empty=False,
        TableManager=PromptTableManager,
    )


def start_questionnaires(settings: Settings) -> tuple[QuestionnaireSet, list[str]]:
    """The questionnaires (bundled and ``NUDGE_QUESTIONNAIRES``) and the problems of the
    files refused: a refused file must not stop the worker from starting; readiness
    reports it (``NUDGE_PLAYBOOKS_STRICT``)."""
    found = QuestionnaireSet(settings.questionnaires)
    refused = found.refused()
    for problem in refused:
        log.error("questionnaire file refused; it is not running", problem=problem)
    return found, refused


def build(
    settings: Settings,
    broker_url: str,
    *,
    notifiers: dict[str, Notifier] | None = None,
    clock: Clock | None = None,
) -> Pipeline:
    """Assemble the app, its topics and tables, its agents and web views."""
    app = make_app(settings, broker_url)
    questionnaires, refused = start_questionnaires(settings)
    pipeline = Pipeline(
        settings=settings,
        app=app,
        scorer=LiveScorer.from_settings(settings),
        playbook_set=PlaybookSet(settings.playbooks or None, check=checking_asks(questionnaires)),
        questionnaire_set=questionnaires,
        notifiers=notifiers if notifiers is not None else build_notifiers(settings),
        policy=Policy.from_settings(settings),
        clock=clock or SystemClock(),
        metrics=Metrics(app),
    )
    pipeline.refused_questionnaires = refused
    pipeline.metrics.watch_refused(lambda: refused_files(pipeline))
    for spec in TOPICS:
        topic = app.topic(spec.name, key_serializer="raw", value_serializer="raw")
        setattr(pipeline, spec.attr, topic)
    pipeline.guards = app.Table("guards", default=None, partitions=settings.partitions)
    pipeline.leads = app.Table("leads", default=None, partitions=settings.partitions)

    async def flush_leads() -> None:
        await pipeline.flush_leads()

    pipeline.timer(LEAD_FLUSH_INTERVAL)(flush_leads)

    async def flush_rule_counts() -> None:
        """Add the rules' evaluation counts to the record (the cockpit's Playbooks page)."""
        counts = pipeline.traces.take_counts()
        if not counts:
            return
        try:
            store = await pipeline.store()
            await store.add_rule_counts(pipeline.clock.now().date().isoformat(), counts)
        except Exception:
            pipeline.traces.give_back(counts)
            raise

    pipeline.timer(RULE_COUNTS_INTERVAL)(flush_rule_counts)

    if settings.database_url:  # workers on other hosts: promotions come through the record

        async def sync_models() -> None:
            store = await pipeline.store()
            if await model_sync.sync(store, settings.data_dir, pipeline.clock.now()) and (
                isinstance(pipeline.scorer, LiveScorer)
            ):
                pipeline.scorer.refresh()  # at once, not at the next event's check

        pipeline.timer(model_sync.SYNC_INTERVAL)(sync_models)

    async def drain_outbox() -> None:
        """Settle nudges a dead worker left in ``sending``, then send held (quiet hours) and
        retry-queued nudges whose time has come (the first pass runs at start)."""
        settled = await reconcile_stale(
            await pipeline.store(),
            pipeline.notifiers,
            pipeline.clock.now(),
            stale_after=dt.timedelta(seconds=pipeline.settings.reconcile_after),
            policy=pipeline.policy,
        )
        pipeline.stats["nudges.reconciled.found"] += settled.found
        pipeline.stats["nudges.reconciled.requeued"] += settled.requeued
        sent = await drain_due(
            await pipeline.store(), pipeline.notifiers, pipeline.clock.now(), policy=pipeline.policy
        )
        if sent:
            pipeline.stats["nudges.drained"] += sent

    pipeline.timer(OUTBOX_DRAIN_INTERVAL)(drain_outbox)

    async def fire_schedules() -> None:
        await scheduler.fire_due(pipeline)

    async def refresh_playbooks() -> None:
        await scheduler.refresh_playbooks(pipeline)

    pipeline.timer(SCHEDULER_INTERVAL)(fire_schedules)
    pipeline.timer(PLAYBOOK_REFRESH_INTERVAL)(refresh_playbooks)

    # the inbound topics: read in batches by intake's own consumer, not by a Faust agent;
    # the app's first dependency, so it starts (and joins its group) with the app
    pipeline.intake = app.add_dependency(Intake(pipeline))
    agents.register(pipeline)
    crm_connectors.register(pipeline)
    app.web_server(HttpServer(routes(pipeline), settings, pipeline.metrics))
    return pipeline

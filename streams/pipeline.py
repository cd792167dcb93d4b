"""What one worker's agents share: the Faust app, store, scorer, playbooks, notifiers, clock.

:class:`Pipeline` is built by :func:`streams.app.build` and handed to every agent,
timer and web view; it imports none of them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import faust

from crm.record import LeadFlush, Source
from crm.schedules import Schedules
from crm.store import Store
from delivery import Policy
from notifiers import Notifier
from nudge.clock import Clock
from nudge.errors import StoreUnavailable
from nudge.logs import get_logger
from nudge.settings import Settings
from nudge.signals import RepView
from playbooks import PlaybookSet
from playbooks.model import Playbook
from playbooks.questionnaire import Questionnaire
from playbooks.questionnaires import QuestionnaireSet
from playbooks.trace import TraceBook
from scoring import LeadState, Scorer
from streams.batching import Envelopes
from streams.metrics import Metrics

log = get_logger(__name__)

Tick = Callable[[], Awaitable[None]]

FLUSH_CHUNK = 200
"""Leads a flush writes per transaction: about 5 ms of wording and encoding on a loaded
2-core machine (``bench/bench_flush.py``), the longest a flush holds the agents."""
ROWS_CHUNK = 1000
"""Score snapshots or decisions a flush writes per transaction."""


@dataclass
class Pipeline:
    """One worker's Faust app and the services its agents share."""

    settings: Settings
    app: faust.App
    scorer: Scorer
    playbook_set: PlaybookSet
    questionnaire_set: QuestionnaireSet
    notifiers: dict[str, Notifier]
    policy: Policy
    clock: Clock
    metrics: Metrics
    stats: Counter[str] = field(default_factory=Counter)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    identities: dict[tuple[str, str], str] = field(default_factory=dict)
    """(kind, value) → lead_id, a read-through cache of the contacts table."""
    dirty_leads: dict[str, LeadState] = field(default_factory=dict)
    """Leads whose score and checkpoint wait for the next batched write to the store;
    dumped then, once per lead however often it changed in between."""
    dirty_fields: dict[str, list[tuple[dict[str, Any], Source]]] = field(default_factory=dict)
    """CRM fields the lead agent's events set, waiting to be merged into the store."""
    unworded: set[str] = field(default_factory=set)
    """Leads whose current score's reasons are not worded yet (``Scorer.words_later``):
    worded when a signal carries them, or in one batch when the store copy is written."""
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    """Score snapshots (feature state per scored event) waiting for the same write."""
    decisions: list[dict[str, Any]] = field(default_factory=list)
    """The rules' decisions to nudge or not, with propensities, waiting for the same write."""
    rep_cache: dict[str, tuple[dt.datetime, RepView | None]] = field(default_factory=dict)
    traces: TraceBook = field(default_factory=TraceBook)
    """The last playbook evaluations per lead, for ``GET /playbooks/explain``."""
    refused_questionnaires: list[str] = field(default_factory=list)
    """Problems of questionnaire files refused at start (none run then)."""
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
                    self._store = await Store.open(self.settings.store_location)
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
            self._schedules = await Schedules.open(self.settings.store_location)
        return self._schedules

    async def conversation_db(self) -> Any:
        """A connection for the conversation agent alone (it runs its own transactions)."""
        if self._conversation_db is None:
            await self.store()
            self._conversation_db = await Store.open(self.settings.store_location)
        return self._conversation_db.db

    def envelopes(self) -> Envelopes:
        """A batch's outgoing items, routed like keyed sends (``streams.batching``)."""
        return Envelopes(self.app, self.settings.partitions)

    def timer(self, interval: float, *, on_leader: bool = False) -> Callable[[Tick], Tick]:
        """``app.timer`` that never takes the worker down: Faust stops the worker when a
        timer raises. A tick the record cannot take (the database is down) is left to the
        next tick; any other failure is logged with its traceback and counted
        (``timers.<name>.failed``), and the next tick runs as usual. Returns the guarded tick."""

        def register(tick: Tick) -> Tick:
            name = tick.__name__

            async def guarded() -> None:
                try:
                    await tick()
                except StoreUnavailable as exc:
                    self.stats["timers.store_unavailable"] += 1
                    log.warning("the record is unavailable; next tick", timer=name, error=str(exc))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.stats[f"timers.{name}.failed"] += 1
                    log.error("timer failed; next tick", timer=name, error=repr(exc), exc_info=exc)

            guarded.__name__ = name
            self.app.timer(interval, on_leader=on_leader)(guarded)
            return guarded

        return register

    @property
    def questionnaires(self) -> dict[str, Questionnaire]:
        """The running questionnaires by id (hot-reloaded; ``playbooks.questionnaires``)."""
        return self.questionnaire_set.questionnaires

    @property
    def playbooks(self) -> list[Playbook]:
        """The running playbooks (hot-reloaded; the last good version of each file)."""
        return self.playbook_set.playbooks

    async def flush_leads(self) -> int:
        """Write the lead copies changed since the last flush, the score snapshots and the
        decisions, in chunks (:data:`FLUSH_CHUNK` leads, :data:`ROWS_CHUNK` rows a
        transaction): the agents run between chunks, so a big flush holds the event loop
        for one chunk's wording and encoding, not for all of it. What a failed chunk and
        the chunks after it held is kept for the next flush (a lead's newer state wins)."""
        if not self.dirty_leads and not self.snapshots and not self.decisions:
            return 0
        fields, self.dirty_fields = self.dirty_fields, {}
        states, self.dirty_leads = list(self.dirty_leads.items()), {}
        snaps, self.snapshots = self.snapshots, []
        decisions, self.decisions = self.decisions, []
        written = saved_snaps = saved_decisions = 0
        batch: list[LeadFlush] = []
        try:
            store = await self._flush_store()
            for start in range(0, len(states), FLUSH_CHUNK):
                chunk = states[start : start + FLUSH_CHUNK]
                self.word([state for lead_id, state in chunk if lead_id in self.unworded])
                batch = [
                    LeadFlush(lead_id, fields.pop(lead_id, []), state.score, state.checkpoint())
                    for lead_id, state in chunk
                ]
                await store.save_lead_states(batch, self.clock.now())
                written, batch = written + len(chunk), []
            for start in range(0, len(snaps), ROWS_CHUNK):
                await store.save_snapshots(snaps[start : start + ROWS_CHUNK])
                saved_snaps = min(len(snaps), start + ROWS_CHUNK)
            for start in range(0, len(decisions), ROWS_CHUNK):
                await store.save_decisions(decisions[start : start + ROWS_CHUNK])
                saved_decisions = min(len(decisions), start + ROWS_CHUNK)
        except StoreUnavailable:  # kept for the next flush (newer states of a lead win)
            for lead_id, state in states[written:]:
                self.dirty_leads.setdefault(lead_id, state)
            for flush in batch:
                fields[flush.lead_id] = flush.fields
            for lead_id, older in fields.items():  # older field changes go first
                self.dirty_fields[lead_id] = older + self.dirty_fields.get(lead_id, [])
            self.snapshots = snaps[saved_snaps:] + self.snapshots
            self.decisions = decisions[saved_decisions:] + self.decisions
            raise
        return written

    async def _flush_store(self) -> Store:
        if self._snapshot_db is None:
            # its own connection: a second's worth of snapshots takes a while to write,
            # and the agents' quick look-ups must not queue behind it on one thread
            await self.store()  # migrations first
            self._snapshot_db = await Store.open(self.settings.store_location)
        return self._snapshot_db

    def word(self, states: list[LeadState]) -> None:
        """Word the reasons of these leads' current scores (one batch for a flush)."""
        if not states:
            return
        try:
            for state, reasons in zip(states, self.scorer.reasons(states), strict=True):
                assert state.score is not None
                state.score["reasons"] = reasons
        except Exception as exc:  # a bug: the copies go without reasons, never stall
            log.error("could not word score reasons", error=repr(exc), exc_info=exc)
        for state in states:
            self.unworded.discard(state.lead_id)

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

    intake: Any = None
    """The inbound topics' consumer (:class:`streams.intake.Intake`), set by build()."""

    # topics, set by build()
    dead: Any = None
    activity: Any = None
    signals: Any = None
    nudges: Any = None
    replies: Any = None
    conversations: Any = None
    crm_events: Any = None
    web_events: Any = None
    call_events: Any = None
    crm_updates: Any = None
    guards: Any = None
    leads: Any = None

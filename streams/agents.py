"""The agents: thin loops that decode, call a pure function, and hand the result on.

    crm/call/web.events ─intake─► lead.activity ─lead─► lead.signals ─playbook─► nudges ─delivery─►

The inbound topics are not read by a Faust agent: :mod:`streams.intake` reads them in
batches with an aiokafka consumer of its own (Faust's cost per message is about the
whole budget per event there) and hands validated, identity-resolved events on to
``lead.activity`` in envelopes. The lead, playbook and delivery agents take
micro-batches, and the first two hand results on in envelopes too (``streams.batching``):
Faust and the producer cost per message, so a batch costs about what one event used to.
A lead touched several times in a batch is read from and written to its table once.

Each agent is at-least-once: Faust commits an offset only after the batch that
held it was handled, and flushes the producer before every commit (intake commits its
own offsets after its envelopes are acknowledged). Sends use
``force=True`` — out at once instead of attached to the next commit, which would
add up to a commit interval (1 s) of latency per hop. Each step is idempotent:
the lead state remembers recent event ids, nudge ids are deterministic, and the
outbox never sends an id twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from aiokafka.structs import ConsumerRecord
from faust.types import EventT

from crm.record import NUDGE_SOURCE, Source
from delivery import SNOOZED, Outcome, deliver_batch
from nudge.errors import StoreUnavailable
from nudge.events import LeadEvent, RepUpserted, parse_event
from nudge.logs import get_logger
from nudge.signals import LeadSignal, NudgeCommand, ScheduleStep, Score
from playbooks import GuardState, decide, resume, step_of, timer_signal, worth_evaluating
from playbooks.decisions import logged_decisions
from playbooks.trace import Delivery
from playbooks.windows import track
from scoring.state import LeadState, apply_event, profile_changes, snapshot_row
from streams.batching import BATCH_MAX, Envelopes, TableBatch, unpack
from streams.commands import dispatch
from streams.conversations import handle_conversation
from streams.pipeline import Pipeline
from streams.rejections import dead_letter
from streams.scheduler import rep_view, signal_key
from streams.topics import ACTIVITY, CONVERSATIONS, REPLIES

log = get_logger(__name__)


def lead_batch(p: Pipeline) -> TableBatch[LeadState]:
    return TableBatch(p.leads, LeadState.from_dict, LeadState.to_dict)


def guard_batch(p: Pipeline) -> TableBatch[GuardState]:
    return TableBatch(p.guards, GuardState.model_validate, lambda g: g.model_dump(mode="json"))


@dataclass
class Folded:
    """One event folded into its lead's state, waiting for the round's scores."""

    event: LeadEvent
    state: LeadState
    changes: dict[str, Any]
    lead_id: str
    item: dict[str, Any]
    message: EventT[Any]
    score: Score | None = None
    signal: LeadSignal | None = None


def fold_activity(
    p: Pipeline, lead_id: str, item: dict[str, Any], leads: TableBatch[LeadState]
) -> tuple[LeadEvent, LeadState, dict[str, Any]] | None:
    """Fold one event into its lead's state (``None``: a redelivered event)."""
    event = parse_event(item)
    assert not isinstance(event, RepUpserted)
    state = leads.get(lead_id) or LeadState(lead_id=lead_id)
    changes = profile_changes(event, state.profile)
    if not apply_event(state, event):
        p.stats["events.duplicate"] += 1
        p.metrics.events.labels(ACTIVITY, "duplicate").inc()
        return None
    windows = p.playbook_set.windows
    if windows or state.windows:
        track(state.windows, windows, event.type, item, event.occurred_at)
    return event, state, changes


async def finish_activity(p: Pipeline, f: Folded, leads: TableBatch[LeadState]) -> None:
    """Record the event's score, queue the lead's store copy and snapshot, and build the
    lead signal if a rule could act on it (``f.signal``; else it is not sent)."""
    assert f.score is not None
    state, event, score, lead_id = f.state, f.event, f.score, f.lead_id
    state.record_score(score)
    leads.put(lead_id, state, f.message)
    p.stats["leads.rescored"] += 1
    view = state.view()
    p.dirty_leads[lead_id] = state
    if p.scorer.words_later(score):
        p.unworded.add(lead_id)  # worded when sent on or written to the store
    else:
        p.unworded.discard(lead_id)
    if f.changes and not event.source.startswith(NUDGE_SOURCE):  # Nudge's own: merged already
        p.dirty_fields.setdefault(lead_id, []).append(
            (f.changes, Source(kind=event.source, at=event.occurred_at, event_id=event.event_id))
        )
    p.snapshots.append(snapshot_row(state, event, score))
    signal = state.signal(event, score, await rep_view(p, view.owner_rep_id), view)
    if not worth_evaluating(signal, p.playbooks):
        p.stats["signals.skipped"] += 1  # no rule could act on it: no need to send it
        return
    f.signal = signal


def word(p: Pipeline, folded: list[Folded]) -> None:
    """Word the reasons of the signals about to be sent, in one call for the round."""
    todo = [f for f in folded if f.lead_id in p.unworded]
    if not todo:
        return
    for f, reasons in zip(todo, p.scorer.reasons([f.state for f in todo]), strict=True):
        assert f.signal is not None and f.state.score is not None
        f.signal.score.reasons = f.state.score["reasons"] = reasons
        p.unworded.discard(f.lead_id)


def rounds(batch: list[tuple[EventT[Any], str, Any]]) -> list[list[tuple[EventT[Any], str, Any]]]:
    """The batch's items in rounds that hold each lead at most once, a lead's items in
    their order: a round's leads are scored together, each from its state as it was
    after its previous item."""
    out: list[list[tuple[EventT[Any], str, Any]]] = []
    seen: dict[str, int] = {}
    for entry in batch:
        k = seen[entry[1]] = seen.get(entry[1], -1) + 1
        if k == len(out):
            out.append([])
        out[k].append(entry)
    return out


async def lead_round(
    p: Pipeline,
    entries: list[tuple[EventT[Any], str, Any]],
    leads: TableBatch[LeadState],
    out: Envelopes,
) -> None:
    """Fold a round's events, score them in one call, finish each and send the signals
    (a lead's timer is handled where it stands). A failing item is dead-lettered alone."""

    async def each(items: list[Folded], work: Callable[[Folded], Awaitable[None]]) -> list[Folded]:
        ok = []
        for f in items:
            try:
                await work(f)
                ok.append(f)
            except StoreUnavailable:
                raise  # the whole batch is redone once the record answers
            except Exception as exc:
                leads.discard(f.lead_id)
                await unexpected(p, "lead", f.message, exc, (f.lead_id, f.item))
        return ok

    started = time.perf_counter()
    folded: list[Folded] = []
    for message, lead_id, item in entries:
        try:
            if "timer" in item:
                await handle_lead_timer(p, lead_id, item, leads, out)
            elif (done := fold_activity(p, lead_id, item, leads)) is not None:
                folded.append(Folded(*done, lead_id=lead_id, item=item, message=message))
        except StoreUnavailable:
            raise
        except Exception as exc:
            leads.discard(lead_id)
            await unexpected(p, "lead", message, exc, (lead_id, item))
    if not folded:
        return
    now = p.clock.now()

    async def score_alone(f: Folded) -> None:
        (f.score,) = p.scorer.rescore_batch([(f.state, f.event)], now)

    try:
        scores = p.scorer.rescore_batch([(f.state, f.event) for f in folded], now)
        for f, score in zip(folded, scores, strict=True):
            f.score = score
    except Exception:  # one lead's state breaks the scorer: find it, score the others
        folded = await each(folded, score_alone)
    per_event = (time.perf_counter() - started) / max(1, len(entries))
    for _ in folded:
        p.metrics.rescore.observe(per_event)
    folded = await each(folded, functools.partial(finish_activity, p, leads=leads))
    sending = [f for f in folded if f.signal is not None]

    async def word_alone(f: Folded) -> None:
        word(p, [f])

    try:
        word(p, sending)
    except Exception:
        sending = await each(sending, word_alone)
    for f in sending:
        assert f.signal is not None
        key = signal_key(f.signal.lead.owner_rep_id, f.lead_id)
        out.add(p.signals, key, f.signal.model_dump_json().encode())


async def handle_lead_timer(
    p: Pipeline, lead_id: str, item: dict[str, Any], leads: TableBatch[LeadState], out: Envelopes
) -> None:
    step = ScheduleStep.model_validate(item["timer"])
    state = leads.get(lead_id)
    view = state.view() if state else None
    owner = view.owner_rep_id if view else step.rep_id
    now = p.clock.now()
    signal = timer_signal(
        view,
        # fresh: "gone quiet 14 days" texts the score as of now, not as of the last event
        p.scorer.score_at(state, now) if state and state.score else None,
        step,
        now,
        await rep_view(p, owner),
        state.target_scores() if state else None,
    )
    since = str(step.check.get("since") or "")
    # "acted": the rep called the lead since the step was planned (escalations check it)
    signal.event["acted"] = bool(state and since and state.touches.get("call", "") > since)
    out.add(p.signals, signal_key(owner, lead_id), signal.model_dump_json().encode())


INITIAL_LOAD = ".initial"
"""Source suffix of the events a connector's first load brings in (``salesforce.initial``)."""


def is_history(signal: LeadSignal, now: dt.datetime, age_hours: float) -> bool:
    """An event-caused signal about the past: part of a connector's initial load, or older
    than ``age_hours`` (0: no age limit)."""
    if str(signal.event.get("source", "")).endswith(INITIAL_LOAD):
        return True
    return age_hours > 0 and signal.at < now - dt.timedelta(hours=age_hours)


async def handle_signal(
    p: Pipeline, key: str, item: dict[str, Any], guards: TableBatch[GuardState], event: EventT[Any]
) -> None:
    """Evaluate the playbooks against one signal (or resume a due step); carry out the result."""
    signal = LeadSignal.model_validate(item)
    before = guards.get(key)
    step = step_of(signal)
    now = signal.at if p.settings.decision_clock == "event" and step is None else p.clock.now()
    history = step is None and is_history(signal, now, p.settings.history_age_hours)
    if history:  # the past texts no one: date and inactivity rules are planned, none fires
        p.stats["signals.history"] += 1
    if step is not None:
        decision = resume(
            step, signal, p.playbooks, now, state=before, acted=bool(signal.event.get("acted"))
        )
    else:
        decision = decide(signal, p.playbooks, now, state=before, history=history)
    p.traces.record(decision.trace)
    p.decisions.extend(d.row() for d in logged_decisions(signal, decision))
    changed = bool(decision.commands) or before is None or decision.state != before
    guards.put(key, decision.state, event, changed)
    for playbook, rule, matched in decision.fired:
        p.stats["playbook.fired"] += 1
        p.metrics.firings.labels(playbook, rule).inc()
        log.info(
            "rule fired", playbook=playbook, rule=rule, lead_id=signal.lead.lead_id, matched=matched
        )
    for command in decision.commands:
        await dispatch(p, command)
    p.stats["signals.evaluated"] += 1  # last: its nudges are on their way to delivery


Inbound: TypeAlias = EventT[Any] | ConsumerRecord[bytes, bytes]
"""A message as an agent gets it from Faust, or a record as intake reads it."""


async def unexpected(
    p: Pipeline,
    agent: str,
    event: Inbound,
    exc: Exception,
    item: tuple[str, Any] | None = None,
) -> None:
    """A bug or a poisoned message: log it, dead-letter the message — or only the
    ``(key, item)`` of an envelope that failed — and keep the agent alive."""
    msg = event.message if isinstance(event, EventT) else event
    p.stats[f"{agent}.errors"] += 1
    log.error(
        f"unexpected error; {'item' if item else 'message'} dead-lettered",
        agent=agent,
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key=item[0] if item else None,
        error=repr(exc),
        exc_info=exc,
    )
    raw: bytes = (msg.value or b"") if item is None else json.dumps(item[1]).encode()
    reason = f"{agent} agent failed: {type(exc).__name__}: {exc}"
    record = dead_letter(
        reason,
        raw,
        kind="agent",
        source="kafka",
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
    )
    await p.dead.send(force=True, key=msg.topic.encode(), value=record)


Handler = Callable[[Pipeline, EventT[Any]], Awaitable[None]]
BatchHandler = Callable[[Pipeline, list[EventT[Any]]], Awaitable[None]]
M = TypeVar("M", EventT[Any], ConsumerRecord[bytes, bytes])


STORE_RETRY_CAP = 10.0
"""Longest wait (s) between two tries of work the record could not take (database down)."""


async def until_stored(p: Pipeline, name: str, work: Callable[[], Awaitable[None]]) -> None:
    """Run ``work`` until the record takes it: while the database is unreachable the same
    message (or batch) is tried again, with backoff, instead of being dead-lettered —
    Kafka's order and at-least-once delivery are kept, nothing is lost."""
    delay = 0.5
    while True:
        try:
            await work()
            return
        except StoreUnavailable as exc:
            p.stats[f"{name}.store_retries"] += 1
            log.warning("the record is unavailable; retrying", agent=name, error=str(exc))
            await asyncio.sleep(delay)
            delay = min(STORE_RETRY_CAP, delay * 2)


def _agent(p: Pipeline, name: str, topic: Any, handle: Handler) -> None:
    """One agent: every message through ``handle``; a failure dead-letters that message only
    (a database outage is waited out instead, :func:`until_stored`)."""

    async def run(stream: Any) -> None:
        async for event in stream.events():
            try:
                await until_stored(p, name, functools.partial(handle, p, event))
            except Exception as exc:
                await unexpected(p, name, event, exc)

    p.app.agent(topic, name=name)(run)


async def handle_batch(
    p: Pipeline, name: str, handle: Callable[[Pipeline, list[M]], Awaitable[None]], events: list[M]
) -> None:
    """Handle one micro-batch; if it fails as a whole, handle its messages one by one, so
    a failure dead-letters only the message that causes it (a database outage is waited
    out instead, :func:`until_stored`)."""
    try:
        await until_stored(p, name, functools.partial(handle, p, events))
    except Exception as exc:
        log.warning(
            "batch failed; handling its messages one by one",
            agent=name,
            size=len(events),
            error=repr(exc),
        )
        for event in events:
            try:
                await until_stored(p, name, functools.partial(handle, p, [event]))
            except Exception as exc:
                await unexpected(p, name, event, exc)


def _batch_agent(p: Pipeline, name: str, topic: Any, handle: BatchHandler) -> None:
    """A micro-batching agent: :func:`handle_batch` on up to ``BATCH_MAX`` messages."""

    within = p.settings.batch_wait_ms / 1000

    async def run(stream: Any) -> None:
        async for events in stream.take_events(BATCH_MAX, within=within):
            await handle_batch(p, name, handle, events)

    p.app.agent(topic, name=name)(run)


async def lead(p: Pipeline, events: list[EventT[Any]]) -> None:
    out, leads = p.envelopes(), lead_batch(p)
    batch = [(event, lead_id, item) for event in events for lead_id, item in unpack(event)]
    await rebuild_missing(p, leads, {lead_id for _, lead_id, _ in batch})
    for entries in rounds(batch):
        await lead_round(p, entries, leads, out)
    await out.flush()  # first: if it fails, the batch is redone from the table as it was
    leads.write()


async def rebuild_missing(p: Pipeline, leads: TableBatch[LeadState], lead_ids: set[str]) -> None:
    """Leads the table does not hold (new, or the table was lost): start from what the
    store holds — profile and last checkpoint — never from nothing (``crm.record``)."""
    missing = sorted(i for i in lead_ids if leads.get(i) is None)
    if not missing:
        return
    found = await (await p.store()).lead_states(missing)
    for lead_id, (profile, checkpoint) in found.items():
        leads.seed(lead_id, LeadState.rebuilt(lead_id, profile, checkpoint))
        p.stats["leads.rebuilt"] += 1


async def playbook(p: Pipeline, events: list[EventT[Any]]) -> None:
    guards = guard_batch(p)
    for event in events:
        for key, item in unpack(event):
            try:
                await handle_signal(p, key, item, guards, event)
            except StoreUnavailable:
                raise  # the whole batch is redone once the record answers
            except Exception as exc:
                await unexpected(p, "playbook", event, exc, (key, item))
    # the commands first: a cooldown saved for a nudge lost in a crash would block it
    await p.app.producer.flush()
    guards.write()


async def _conversation(p: Pipeline, event: EventT[Any]) -> None:
    key = event.key if isinstance(event.key, bytes) else b""
    await handle_conversation(p, key, event.value)


async def delivery(p: Pipeline, events: list[EventT[Any]]) -> None:
    """Deliver a micro-batch of nudges: queued in one commit, each rep touched drained
    once (:func:`delivery.deliver_batch`); then each nudge's trace, metric and log line."""
    commands = [NudgeCommand.model_validate_json(event.value) for event in events]
    store, wall = await p.store(), p.clock.now()

    def now_of(command: NudgeCommand) -> dt.datetime:
        return command.created_at if p.settings.decision_clock == "event" else wall

    for now, group in itertools.groupby(commands, key=now_of):  # event clock: in its steps
        for outcome in await deliver_batch(list(group), store, p.notifiers, now, policy=p.policy):
            delivered(p, outcome)
    p.stats["nudges.handled"] += len(commands)


def register(p: Pipeline) -> None:
    """Attach the agents to the pipeline's app, in the order of the flow (the inbound
    topics are read by :mod:`streams.intake`)."""
    _batch_agent(p, "lead", p.activity, lead)
    _batch_agent(p, "playbook", p.signals, playbook)
    _agent(
        p,
        "conversation",
        p.app.topic(REPLIES, CONVERSATIONS, key_serializer="raw", value_serializer="raw"),
        _conversation,
    )
    _batch_agent(p, "delivery", p.nudges, delivery)


def delivered(p: Pipeline, outcome: Outcome) -> None:
    """Count, trace and log what became of one nudge."""
    command, state, row = outcome.command, outcome.state, outcome.row or {}
    p.stats[f"nudges.{state}"] += 1
    if state == SNOOZED:
        return
    p.traces.delivered(command.lead_id, delivery_of(command, row, state))
    p.metrics.nudges.labels(row.get("channel") or command.channel, state).inc()
    log.info("nudge handled", nudge_id=command.nudge_id, rep_id=command.rep_id, state=state)


POLICY_OF_STATE = {"sent": "send", "delivered": "send", "held": "hold", "suppressed": "suppress"}


def delivery_of(command: NudgeCommand, row: dict[str, Any], state: str) -> Delivery:
    """The outbox row of a nudge as the decision trace words it (send / hold / suppress)."""
    return Delivery(
        nudge_id=command.nudge_id,
        rep_id=command.rep_id,
        action=POLICY_OF_STATE.get(state, state),
        reason=row.get("reason"),
        channel=row.get("channel"),
        not_before=row.get("not_before") if state == "held" else None,
    )

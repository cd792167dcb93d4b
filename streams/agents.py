"""The agents: thin loops that decode, call a pure function, and hand the result on.

    crm/call/web.events ─ingest─► lead.activity ─lead─► lead.signals ─playbook─► nudges ─delivery─►

Each agent is at-least-once: Faust commits an offset after the loop body ran,
and flushes the producer before every commit. Sends use ``force=True`` — out
at once instead of attached to the next commit, which would add up to a commit
interval (1 s) of latency per hop — and the flush-before-commit still orders
them before the offset. Each step is idempotent: the lead state remembers recent event ids, nudge ids
are deterministic, and the outbox never sends an id twice.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from faust.types import EventT

from crm.outbox import Outbox
from crm.store import normalise_identity
from delivery import deliver
from nudge.errors import EventRejected
from nudge.events import LeadEvent, RepUpserted, event_to_json, parse_event
from nudge.logs import get_logger
from nudge.signals import LeadSignal, NudgeCommand
from playbooks import evaluate
from scoring.state import LeadState, apply_event
from streams.app import IDENTITY_CACHE_MAX, Pipeline

log = get_logger(__name__)

IDENTITY_KINDS = (("email", "email"), ("phone", "phone"), ("visitor_id", "visitor"))


def dead_letter(reason: str, raw: bytes | None, event: EventT[Any] | None) -> bytes:
    """The ``events.dead`` record: why, where from, and the payload exactly as received."""
    record: dict[str, Any] = {"reason": reason}
    if event is not None:
        msg = event.message
        record.update(topic=msg.topic, partition=msg.partition, offset=msg.offset)
    if raw is not None:
        try:
            record["raw"] = raw.decode()
        except UnicodeDecodeError:
            record["raw_base64"] = base64.b64encode(raw).decode()
    return json.dumps(record).encode()


async def resolve_lead(pipeline: Pipeline, event: LeadEvent) -> tuple[str | None, list[Any]]:
    """The lead an event is about, and earlier events that waited for it.

    An event with a lead_id links its email/phone/visitor id to that lead, and
    claims the unmatched events that arrived earlier under those identities (they
    are forwarded after it, so the lead's profile — its owner — comes first).
    """
    store = await pipeline.store()
    cache = pipeline.identities
    if len(cache) > IDENTITY_CACHE_MAX:
        cache.clear()
    if event.lead_id:
        late: list[Any] = []
        for attr, kind in IDENTITY_KINDS:
            value = getattr(event, attr)
            if not value:
                continue
            ident = (kind, normalise_identity(kind, value))
            if cache.get(ident) == event.lead_id:
                continue  # linked before: nothing new to record or to claim
            await store.link_identity(kind, value, event.lead_id)
            cache[ident] = event.lead_id
            late += [
                parse_event({**detail, "lead_id": event.lead_id})
                for detail in await store.claim_unmatched(kind, value, event.lead_id)
            ]
        return event.lead_id, late
    for attr, kind in IDENTITY_KINDS:
        value = getattr(event, attr)
        if not value:
            continue
        ident = (kind, normalise_identity(kind, value))
        lead_id = cache.get(ident) or await store.resolve(kind, value)
        if lead_id:
            cache[ident] = lead_id
            return lead_id, []
    return None, []


async def handle_inbound(p: Pipeline, event: EventT[Any]) -> None:
    """Validate one inbound message; dead-letter it, upsert a rep, or forward it by lead."""
    raw: bytes = event.value
    topic = event.message.topic
    p.stats["events.in"] += 1
    try:
        parsed = parse_event(raw)
    except EventRejected as exc:
        p.stats["events.rejected"] += 1
        p.metrics.events.labels(topic, "rejected").inc()
        log.warning(
            "event rejected",
            reason=exc.reason,
            event_id=exc.event_id,
            topic=event.message.topic,
            offset=event.message.offset,
        )
        await p.dead.send(
            force=True, key=event.message.topic.encode(), value=dead_letter(exc.reason, raw, event)
        )
        return
    store = await p.store()
    if isinstance(parsed, RepUpserted):
        await store.upsert_rep(parsed)
        p.stats["events.accepted"] += 1
        p.stats["reps.upserted"] += 1
        p.metrics.events.labels(topic, "accepted").inc()
        return
    lead_id, late = await resolve_lead(p, parsed)
    if lead_id is None:
        p.stats["events.unmatched"] += 1
        p.metrics.events.labels(topic, "unmatched").inc()
        await store.log_activity(
            parsed.event_id,
            None,
            parsed.type,
            parsed.occurred_at,
            detail=parsed.model_dump(mode="json", exclude_none=True),
        )
        idents = [(k, getattr(parsed, a)) for a, k in IDENTITY_KINDS if getattr(parsed, a)]
        lead_id, claimed = await store.claim_if_linked(idents)  # linked meanwhile elsewhere?
        for detail in claimed:
            assert lead_id is not None
            p.stats["events.late_matched"] += 1
            late_event = parse_event({**detail, "lead_id": lead_id})
            await p.activity.send(force=True, key=lead_id.encode(), value=event_to_json(late_event))
        return
    if parsed.lead_id != lead_id:
        parsed = parsed.model_copy(update={"lead_id": lead_id})
    p.stats["events.accepted"] += 1
    p.metrics.events.labels(topic, "accepted").inc()
    await p.activity.send(force=True, key=lead_id.encode(), value=event_to_json(parsed))
    for event_ in late:
        p.stats["events.late_matched"] += 1
        await p.activity.send(force=True, key=lead_id.encode(), value=event_to_json(event_))


async def handle_activity(p: Pipeline, lead_id: str, raw: bytes) -> None:
    """Fold one event into the lead's state, rescore, and emit the lead signal."""
    event = parse_event(raw)
    assert not isinstance(event, RepUpserted)
    stored = p.leads.get(lead_id)
    state = LeadState.from_dict(stored) if stored else LeadState(lead_id=lead_id)
    started = time.perf_counter()
    if not apply_event(state, event):
        p.stats["events.duplicate"] += 1
        p.metrics.events.labels("lead.activity", "duplicate").inc()
        return
    score = p.scorer.rescore(state, event, p.clock.now())
    p.metrics.rescore.observe(time.perf_counter() - started)
    state.record_score(score)
    p.leads[lead_id] = state.to_dict()
    p.stats["leads.rescored"] += 1
    p.dirty_leads[lead_id] = (state.view().model_dump(mode="json"), state.score)
    signal = LeadSignal(
        lead=state.view(),
        event=event.model_dump(mode="json", exclude_none=True),
        event_id=event.event_id,
        event_type=event.type,
        at=event.occurred_at,
        score=score,
        history=state.score_history(),
    )
    await p.signals.send(force=True, key=lead_id.encode(), value=signal.model_dump_json().encode())


async def handle_signal(p: Pipeline, raw: bytes) -> None:
    """Evaluate the playbooks against one signal and issue their commands."""
    signal = LeadSignal.model_validate_json(raw)
    p.stats["signals.evaluated"] += 1
    for command in evaluate(signal, p.playbooks, p.clock.now()):
        p.stats["playbook.fired"] += 1
        p.metrics.firings.labels(command.playbook, command.rule).inc()
        log.info(
            "rule fired",
            playbook=command.playbook,
            rule=command.rule,
            lead_id=command.lead_id,
            rep_id=command.rep_id,
        )
        await p.nudges.send(
            force=True, key=command.rep_id.encode(), value=command.model_dump_json().encode()
        )


async def unexpected(p: Pipeline, agent: str, event: EventT[Any], exc: Exception) -> None:
    """A bug or a poisoned message: log it, dead-letter the message, keep the agent alive."""
    p.stats[f"{agent}.errors"] += 1
    log.error(
        "unexpected error; message dead-lettered",
        agent=agent,
        topic=event.message.topic,
        partition=event.message.partition,
        offset=event.message.offset,
        error=repr(exc),
        exc_info=exc,
    )
    reason = f"{agent} agent failed: {type(exc).__name__}: {exc}"
    await p.dead.send(
        force=True, key=event.message.topic.encode(), value=dead_letter(reason, event.value, event)
    )


def register(p: Pipeline) -> None:
    """Attach the four agents to the pipeline's app. Each survives a bad message."""
    app = p.app

    @app.agent(p.inbound, name="ingest")
    async def ingest(stream: Any) -> None:
        async for event in stream.events():
            try:
                await handle_inbound(p, event)
            except Exception as exc:
                await unexpected(p, "ingest", event, exc)

    @app.agent(p.activity, name="lead")
    async def lead(stream: Any) -> None:
        async for event in stream.events():
            try:
                await handle_activity(p, event.key.decode(), event.value)
            except Exception as exc:
                await unexpected(p, "lead", event, exc)

    @app.agent(p.signals, name="playbook")
    async def playbook(stream: Any) -> None:
        async for event in stream.events():
            try:
                await handle_signal(p, event.value)
            except Exception as exc:
                await unexpected(p, "playbook", event, exc)

    @app.agent(p.nudges, name="delivery")
    async def delivery(stream: Any) -> None:
        async for event in stream.events():
            try:
                await handle_nudge(p, NudgeCommand.model_validate_json(event.value))
            except Exception as exc:
                await unexpected(p, "delivery", event, exc)
            finally:
                p.stats["nudges.handled"] += 1


async def handle_nudge(p: Pipeline, command: NudgeCommand) -> None:
    """Queue the nudge in the outbox and send what is due for its rep (delivery decides)."""
    store = await p.store()
    state = await deliver(command, store, p.notifiers, p.clock.now(), policy=p.policy)
    p.stats[f"nudges.{state}"] += 1
    row = await Outbox(store).get(command.nudge_id)
    p.metrics.nudges.labels((row or {}).get("channel") or command.channel, state).inc()
    log.info("nudge handled", nudge_id=command.nudge_id, rep_id=command.rep_id, state=state)

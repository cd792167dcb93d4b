"""The conversation agent (keyed by rep): questionnaires asked and answered.

It consumes ``replies`` (what reps text or tap, from the webhooks) and
``conversations`` (``ask`` commands from playbooks, and due reminders from the
scheduler), runs the pure state machine in :mod:`playbooks.conversation`, and
carries out its instructions: prompts go to the delivery agent as nudges (their
ids are deterministic, so a replay never sends twice), reminders into the
durable scheduler, answers into the CRM store with an audit row each and back
into ``crm.events`` as a ``lead.updated`` event — so the score and the playbooks
see them — and stray texts become notes on the rep's latest activity.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

from crm import conversations as conv
from delivery.policy import local_day_start
from nudge.events import CallEnded, event_to_json
from nudge.logs import get_logger
from nudge.signals import AskQuestionnaire, NudgeCommand, Reply, ScheduleStep
from playbooks.conversation import (
    ApplyAnswers,
    AttachNote,
    InboundReply,
    QuestionnaireRequest,
    RepConversations,
    ScheduleTimer,
    SendMessage,
    is_current,
    on_reply,
    on_timer,
    start,
)
from playbooks.replies import (
    ACK,
    ACTIONS,
    SNOOZE,
    WHICH_NOTE,
    Act,
    Answer,
    Note,
    Prompt,
    Reading,
    Which,
    read_reply,
)
from streams.commands import send_nudge
from streams.pipeline import Pipeline

log = get_logger(__name__)


def channel_for(p: Pipeline, wanted: str, rep: dict[str, Any] | None) -> str:
    """A concrete channel: the one asked for if we have it, else Slack, SMS, the console."""
    if wanted in p.notifiers:
        return wanted
    if "slack" in p.notifiers and rep and rep.get("slack_user_id"):
        return "slack"
    if "sms" in p.notifiers and rep and rep.get("phone"):
        return "sms"
    return "console" if "console" in p.notifiers else next(iter(p.notifiers))


async def handle_conversation(p: Pipeline, key: bytes, raw: bytes) -> None:
    message = json.loads(raw)
    now = p.clock.now()
    db = await p.conversation_db()
    if "ask" in message:
        ask = AskQuestionnaire.model_validate(message["ask"])
        questionnaire = p.questionnaires.get(ask.questionnaire)
        if questionnaire is None:
            log.warning(
                "unknown questionnaire; not asked",
                questionnaire=ask.questionnaire,
                playbook=ask.playbook,
                rule=ask.rule,
            )
            return
        rep = await (await p.store()).get_rep(ask.rep_id)
        state = await conv.load_state(db, ask.rep_id)
        if await over_question_limit(p, db, ask, state, rep, now):
            return
        subject = await _company(p, ask.lead_id)
        request = QuestionnaireRequest(
            request_id=ask.command_id,
            rep_id=ask.rep_id,
            channel=channel_for(p, ask.channel, rep),  # type: ignore[arg-type]
            questionnaire_id=ask.questionnaire,
            lead_id=ask.lead_id,
            subject=subject,
            activity_id=ask.trigger_event_id,
            requested_at=ask.created_at,
        )
        step = start(state, request, questionnaire, now)
    elif "timer" in message:
        timer = ScheduleTimer.model_validate(message["timer"])
        step = on_timer(await conv.load_state(db, timer.rep_id), timer, now)
    else:
        reply = Reply.model_validate(message)
        if reply.kind not in ("message", "action") or not reply.rep_id:
            return  # opt-out/in and help were answered by the webhook itself
        rep = await (await p.store()).get_rep(reply.rep_id)
        channel = reply.channel if reply.channel in p.notifiers else channel_for(p, "best", rep)
        inbound = InboundReply(
            reply_id=reply.reply_id,
            rep_id=reply.rep_id,
            channel=channel,  # type: ignore[arg-type]
            text=reply.choice or reply.text or (reply.action or ""),
            received_at=reply.received_at,
        )
        zone = ZoneInfo(rep["timezone"]) if rep else ZoneInfo("UTC")
        state = await conv.load_state(db, reply.rep_id)
        prompts = await conv.delivered_prompts(db, reply.rep_id, channel, now - PROMPTS_SINCE)
        reading = read_clicked(reply, prompts) or read_reply(inbound.text, prompts, now)
        p.stats["replies.handled"] += 1
        active = state.active(inbound.channel)
        if (
            isinstance(reading, Answer)
            and active is not None
            and active.session_id == reading.session_id
            and (not reading.message_id or is_current(state, active.session_id, reading.message_id))
        ):
            step = on_reply(state, inbound, now, zone)
        else:
            if isinstance(reading, Answer):  # not the question now open: not an answer
                reading = read_reply(inbound.text, prompts[1:], now)
                if isinstance(reading, Answer):
                    reading = Note(None, None, inbound.text)
            await answer_reading(p, db, reply, channel, reading, now)
            return
    for instruction in step.instructions:
        await carry_out(p, db, instruction, now)
    await conv.save_step(db, step, now)


async def over_question_limit(
    p: Pipeline,
    db: Any,
    ask: AskQuestionnaire,
    state: RepConversations,
    rep: dict[str, Any] | None,
    now: dt.datetime,
) -> bool:
    """Has the rep been asked ``NUDGE_QUESTIONNAIRE_DAILY_LIMIT`` questionnaires today (in
    their zone)? Then this ask is dropped, logged and counted. An ask already handled
    (a redelivery) is never over it: it is a no-op anyway."""
    if ask.command_id in state.recent_ids:
        return False
    zone = ZoneInfo(rep["timezone"]) if rep and rep.get("timezone") else ZoneInfo("UTC")
    asked = await conv.asked_since(db, ask.rep_id, local_day_start(ask.created_at, zone))
    if asked < p.settings.questionnaire_daily_limit:
        return False
    log.info(
        "questionnaire not asked: the rep's daily questionnaire limit",
        rep_id=ask.rep_id,
        lead_id=ask.lead_id,
        questionnaire=ask.questionnaire,
        limit=p.settings.questionnaire_daily_limit,
    )
    p.stats["questionnaires.over_limit"] += 1
    return True


PROMPTS_SINCE = dt.timedelta(days=2)
"""How far back delivered messages are looked at to match a reply."""


def read_clicked(reply: Reply, prompts: list[Prompt]) -> Reading | None:
    """A Slack button names what it answers: the nudge (and lead) it was under, or the
    questionnaire question it was offered with."""
    if reply.action in ACTIONS.values() and reply.lead_id:
        company = next((q.company for q in prompts if q.lead_id == reply.lead_id), None)
        return Act(
            reply.action or "", reply.lead_id, company or reply.lead_id, reply.nudge_id or ""
        )
    if reply.choice and reply.nudge_id:
        asked = next((q for q in prompts if q.message_id == reply.nudge_id), None)
        if asked is not None and asked.session_id:
            return Answer(asked.session_id, asked.message_id)
    return None


async def answer_reading(
    p: Pipeline, db: Any, reply: Reply, channel: str, reading: Reading, now: dt.datetime
) -> None:
    """Carry out a reply that is not a questionnaire answer, and acknowledge it by name."""
    assert reply.rep_id is not None
    if isinstance(reading, Act):
        await act_on_nudge(p, reply, reading, now)
        text = ACK[reading.action].format(company=reading.company)
        lead_id, rule = reading.lead_id, reading.action
    elif isinstance(reading, Which):
        text, lead_id, rule = reading.text, "-", "which"
        p.stats["replies.ambiguous"] += 1
    else:
        assert isinstance(reading, Note)
        note = AttachNote(
            note_id=reply.reply_id,
            rep_id=reply.rep_id,
            channel=channel,  # type: ignore[arg-type]
            text=reading.text,
            received_at=reply.received_at,
            lead_id=reading.lead_id,
        )
        await conv.attach_note(db, note, now)
        p.stats["notes.attached"] += 1
        if reading.lead_id is None:
            text, lead_id, rule = WHICH_NOTE, "-", "which_note"
        else:
            company = reading.company or reading.lead_id
            text, lead_id, rule = ACK["note"].format(company=company), reading.lead_id, "note"
    await send_nudge(
        p,
        NudgeCommand(
            nudge_id=f"ack-{reply.reply_id}",
            rep_id=reply.rep_id,
            lead_id=lead_id,
            channel=channel,  # type: ignore[arg-type]
            text=text,
            playbook="reply",
            rule=rule,
            trigger_event_id=reply.reply_id,
            created_at=now,
        ),
    )


async def act_on_nudge(p: Pipeline, reply: Reply, act: Act, now: dt.datetime) -> None:
    """The rep answered a nudge: log it on the lead, and a call as a call (the score sees it)."""
    assert reply.rep_id is not None
    store = await p.store()
    lead_id = act.lead_id
    await store.log_activity(
        f"reply-{reply.reply_id}",
        lead_id,
        f"nudge.{act.action}",
        reply.received_at,
        rep_id=reply.rep_id,
        detail={"reply_id": reply.reply_id, "nudge_id": act.nudge_id},
    )
    if act.action == "snooze":
        await store.snooze(reply.rep_id, lead_id, now + SNOOZE)
    if act.action == "log_call":
        call = CallEnded(
            type="call.ended",
            event_id=f"call-{reply.reply_id}",
            occurred_at=reply.received_at,
            source="nudge.reply",
            lead_id=lead_id,
            rep_id=reply.rep_id,
            duration_s=0,
            outcome="logged from a nudge",
        )
        await p.call_events.send(force=True, key=lead_id.encode(), value=event_to_json(call))
    update = {"kind": "nudge_reply", "lead_id": lead_id, "rep_id": reply.rep_id}
    await p.crm_updates.send(
        force=True,
        key=lead_id.encode(),
        value=json.dumps({**update, "action": act.action}).encode(),
    )
    p.stats[f"replies.{act.action}"] += 1


async def _company(p: Pipeline, lead_id: str | None) -> str | None:
    if not lead_id:
        return None
    return (await conv.companies_of((await p.store()).db, {lead_id})).get(lead_id)


async def carry_out(p: Pipeline, db: Any, instruction: Any, now: Any) -> None:
    """One instruction of the state machine; each is safe to repeat."""
    if isinstance(instruction, SendMessage):
        await send_nudge(
            p,
            NudgeCommand(
                nudge_id=instruction.message_id,
                rep_id=instruction.rep_id,
                lead_id=instruction.lead_id or "-",
                channel=instruction.channel,
                text=instruction.text,
                playbook="questionnaire",
                rule=instruction.session_id,
                trigger_event_id=instruction.session_id,
                created_at=now,
                choices=instruction.buttons,
                answer_box=not instruction.buttons,
            ),
        )
        p.stats["questions.sent"] += 1
    elif isinstance(instruction, ScheduleTimer):
        await (await p.schedules()).add(
            ScheduleStep(
                schedule_id=instruction.timer_id,
                due_at=instruction.at,
                partition_key=instruction.rep_id,
                purpose="questionnaire",
                rep_id=instruction.rep_id,
                playbook="questionnaire",
                rule=instruction.session_id,
                trigger_event_id=instruction.timer_id,
                check=instruction.model_dump(mode="json"),
                created_at=now,
            ),
            now,
        )
    elif isinstance(instruction, ApplyAnswers):
        changes = await conv.apply_answers(db, instruction, now)
        event = conv.lead_updated_event(instruction, changes)
        if event is not None:
            await p.crm_events.send(
                force=True, key=(event.lead_id or "").encode(), value=event_to_json(event)
            )
            for change in changes:
                await p.crm_updates.send(
                    force=True,
                    key=(event.lead_id or "").encode(),
                    value=change.model_dump_json().encode(),
                )
        p.stats["answers.applied"] += len(changes)
    elif isinstance(instruction, AttachNote):
        await conv.attach_note(db, instruction, now)
        p.stats["notes.attached"] += 1

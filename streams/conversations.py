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
from crm.store import fetch_one
from nudge.events import CallEnded, event_to_json
from nudge.logs import get_logger
from nudge.signals import AskQuestionnaire, NudgeCommand, Reply, ScheduleStep
from playbooks.conversation import (
    ApplyAnswers,
    AttachNote,
    InboundReply,
    QuestionnaireRequest,
    ScheduleTimer,
    SendMessage,
    on_reply,
    on_timer,
    start,
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
        action = nudge_action(reply)
        if action and state.active(inbound.channel) is None:
            await act_on_nudge(p, reply, action, now)
            return
        step = on_reply(state, inbound, now, zone)
        p.stats["replies.handled"] += 1
    for instruction in step.instructions:
        await carry_out(p, db, instruction, now)
    await conv.save_step(db, step, now)


SNOOZE = dt.timedelta(days=1)
NUDGE_REPLIES = {"1": "log_call", "2": "snooze", "3": "not_relevant"}
"""What a bare digit means when no questionnaire is waiting: the answer to the last nudge."""
ACK = {
    "log_call": "Logged a call with {company}.",
    "snooze": "Snoozed {company} for a day.",
    "not_relevant": "Noted: {company} is not relevant.",
}


def nudge_action(reply: Reply) -> str | None:
    """log_call / snooze / not_relevant, from a Slack button or a texted 1/2/3."""
    if reply.action in ACK:
        return reply.action
    return NUDGE_REPLIES.get(reply.text.strip().rstrip(".!"))


async def act_on_nudge(p: Pipeline, reply: Reply, action: str, now: Any) -> None:
    """The rep answered a nudge: log it on the lead, and a call as a call (the score sees it)."""
    store = await p.store()
    lead_id = reply.lead_id
    if not lead_id:
        row = await fetch_one(
            store.db,
            """SELECT lead_id FROM outbox WHERE rep_id = ? AND state IN ('sent', 'delivered')
               AND playbook != 'questionnaire' ORDER BY COALESCE(sent_at, updated_at) DESC
               LIMIT 1""",
            (reply.rep_id,),
        )
        lead_id = str(row[0]) if row else None
    if not lead_id or not reply.rep_id:
        log.info("a reply to a nudge, but no nudge to attach it to", rep_id=reply.rep_id)
        return
    await store.log_activity(
        f"reply-{reply.reply_id}",
        lead_id,
        f"nudge.{action}",
        reply.received_at,
        rep_id=reply.rep_id,
        detail={"reply_id": reply.reply_id, "nudge_id": reply.nudge_id},
    )
    if action == "snooze":
        await store.snooze(reply.rep_id, lead_id, now + SNOOZE)
    if action == "log_call":
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
    await p.crm_updates.send(
        force=True,
        key=lead_id.encode(),
        value=json.dumps(
            {"kind": "nudge_reply", "lead_id": lead_id, "rep_id": reply.rep_id, "action": action}
        ).encode(),
    )
    company = await _company(p, lead_id) or lead_id
    rep = await store.get_rep(reply.rep_id)
    await send_nudge(
        p,
        NudgeCommand(
            nudge_id=f"ack-{reply.reply_id}",
            rep_id=reply.rep_id,
            lead_id=lead_id,
            channel=channel_for(p, reply.channel, rep),  # type: ignore[arg-type]
            text=ACK[action].format(company=company),
            playbook="reply",
            rule=action,
            trigger_event_id=reply.reply_id,
            created_at=now,
        ),
    )
    p.stats[f"replies.{action}"] += 1


async def _company(p: Pipeline, lead_id: str | None) -> str | None:
    if not lead_id:
        return None
    store = await p.store()
    row = await fetch_one(store.db, "SELECT company FROM leads WHERE lead_id = ?", (lead_id,))
    return str(row[0]) if row and row[0] else None


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

"""Conversation storage (crm.conversations) against a real SQLite file."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crm import conversations as conv
from crm.store import Store
from playbooks.conversation import (
    Answer,
    ApplyAnswers,
    AttachNote,
    InboundReply,
    QuestionnaireRequest,
    new_state,
    on_reply,
    start,
)
from playbooks.questionnaire import load_questionnaires

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "crm.sqlite")
    yield s
    await s.close()


def apply_for(lead_id: str | None, *answers: tuple[str, str | None, object]) -> ApplyAnswers:
    return ApplyAnswers(
        session_id="qs_1",
        rep_id="rep-1",
        lead_id=lead_id,
        questionnaire_id="post-meeting",
        activity_id=None,
        outcome="completed",
        answers=[
            Answer(question_id=q, field=f, value=v, raw=str(v), answered_at=NOW)  # type: ignore[arg-type]
            for q, f, v in answers
        ],
    )


async def profile(store: Store, lead_id: str) -> dict[str, object]:
    async with store.db.execute(
        "SELECT stage, profile_json FROM leads WHERE lead_id = ?", (lead_id,)
    ) as cur:
        row = await cur.fetchone()
    assert row is not None
    data: dict[str, object] = json.loads(row[1])
    data["_stage_column"] = row[0]
    return data


async def test_answers_update_fields_with_audit_rows(store: Store) -> None:
    """Applying answers changes the lead's fields and writes one audit row per change."""
    await store.save_lead(
        {"lead_id": "L1", "company": "Acme", "stage": "qualified", "custom": {"seats": 10}}, None
    )
    changes = await conv.apply_answers(
        store.db,
        apply_for(
            "L1",
            ("stage", "deal.stage", "proposal"),
            ("dep", "lead.custom.furniture_depreciated", False),
            ("close", "deal.close_date", "2026-12-15"),
            ("why", None, "free words, no field"),
        ),
        NOW,
    )
    assert [(c.field, c.old_value, c.new_value) for c in changes] == [
        ("deal.stage", "qualified", "proposal"),
        ("lead.custom.furniture_depreciated", None, False),
        ("deal.close_date", None, "2026-12-15"),
    ]
    lead = await profile(store, "L1")
    assert lead["stage"] == "proposal" and lead["_stage_column"] == "proposal"
    assert lead["custom"] == {
        "seats": 10,
        "furniture_depreciated": False,
        "deal_close_date": "2026-12-15",
    }
    audit = await conv.field_changes(store.db, "L1")
    assert [(a.field, a.old_value, a.new_value) for a in audit][1] == (
        "lead.custom.furniture_depreciated",
        None,
        False,
    )
    first = audit[0]
    assert (first.source, first.source_questionnaire, first.session_id, first.answered_at) == (
        "questionnaire:post-meeting",
        "post-meeting",
        "qs_1",
        NOW,
    )
    assert len(audit) == 3


async def test_replayed_apply_is_a_no_op(store: Store) -> None:
    """The same ApplyAnswers twice writes no second audit row and changes nothing more."""
    await store.save_lead({"lead_id": "L1", "deal_value": 100.0}, None)
    apply = apply_for("L1", ("value", "deal.value", 12000))
    assert len(await conv.apply_answers(store.db, apply, NOW)) == 1
    assert await conv.apply_answers(store.db, apply, NOW) == []
    assert len(await conv.field_changes(store.db, "L1")) == 1


async def test_unchanged_value_leaves_no_audit_row(store: Store) -> None:
    """An answer equal to the current value is stored as an answer but is not a change."""
    await store.save_lead({"lead_id": "L1", "stage": "demo"}, None)
    assert (
        await conv.apply_answers(store.db, apply_for("L1", ("s", "deal.stage", "demo")), NOW) == []
    )
    async with store.db.execute("SELECT COUNT(*) FROM questionnaire_answers") as cur:
        row = await cur.fetchone()
    assert row is not None and row[0] == 1


async def test_unknown_lead_is_created(store: Store) -> None:
    """Answers about a lead the store has not seen create it with those fields."""
    changes = await conv.apply_answers(store.db, apply_for("L9", ("v", "deal.value", 5000)), NOW)
    assert changes[0].old_value is None
    lead = await profile(store, "L9")
    assert lead["deal_value"] == 5000


async def test_lead_fields_update_matches_lead_fields_shape(store: Store) -> None:
    """Changes convert to a LeadFields mapping a lead.updated event accepts."""
    from nudge.events import LeadFields

    changes = await conv.apply_answers(
        store.db,
        apply_for("L1", ("s", "deal.stage", "won"), ("c", "deal.close_date", "2026-12-15")),
        NOW,
    )
    fields = conv.lead_fields_update(changes)
    assert LeadFields.model_validate(fields).custom == {"deal_close_date": "2026-12-15"}


async def test_session_state_survives_a_restart(store: Store, tmp_path: Path) -> None:
    """save_step then load_state (on a new connection) gives back the open session and ids."""
    q = load_questionnaires()["post-meeting"]
    req = QuestionnaireRequest(
        request_id="cmd-1",
        rep_id="rep-1",
        channel="sms",
        questionnaire_id=q.id,
        lead_id="L1",
        requested_at=NOW,
    )
    step = start(new_state("rep-1"), req, q, NOW)
    await conv.save_step(store.db, step, NOW)
    reply = InboundReply(reply_id="SM1", rep_id="rep-1", channel="sms", text="5", received_at=NOW)
    step = on_reply(step.state, reply, NOW, ZoneInfo("UTC"))
    await conv.save_step(store.db, step, NOW)
    store2 = await Store.open(tmp_path / "crm.sqlite")  # a second connection: committed
    try:
        state = await conv.load_state(store2.db, "rep-1")
    finally:
        await store2.close()
    assert state == step.state
    assert on_reply(state, reply, NOW, ZoneInfo("UTC")).instructions == []


async def test_note_attaches_to_latest_activity(store: Store) -> None:
    """A stray text lands on the rep's most recent activity; with none it is still kept."""
    note = AttachNote(note_id="SM5", rep_id="rep-1", channel="sms", text="call me", received_at=NOW)
    assert await conv.attach_note(store.db, note, NOW) == (None, None)
    await store.log_activity("a1", "L1", "call.ended", NOW - dt.timedelta(hours=3), rep_id="rep-1")
    await store.log_activity(
        "a2", "L2", "meeting.ended", NOW - dt.timedelta(hours=1), rep_id="rep-1"
    )
    await store.log_activity("a3", "L3", "call.ended", NOW, rep_id="rep-2")
    second = note.model_copy(update={"note_id": "SM6"})
    assert await conv.attach_note(store.db, second, NOW) == ("a2", "L2")
    assert [n["text"] for n in await conv.notes_for(store.db, "a2")] == ["call me"]


async def test_agent_loop_end_to_end(store: Store) -> None:
    """The loop the streams agent runs: start, replies, carry out instructions, save, emit."""
    await store.save_lead({"lead_id": "L1", "company": "Acme", "stage": "demo"}, None)
    q = load_questionnaires()["post-meeting"]
    tz = ZoneInfo("America/New_York")
    state = await conv.load_state(store.db, "rep-1")
    req = QuestionnaireRequest(
        request_id="n_1", rep_id="rep-1", channel="sms", questionnaire_id=q.id,
        lead_id="L1", subject="Acme", requested_at=NOW,
    )  # fmt: skip
    steps = [start(state, req, q, NOW)]
    for n, text in enumerate(["great", "1", "12/15"], 1):
        reply = InboundReply(
            reply_id=f"SM{n}", rep_id="rep-1", channel="sms", text=text, received_at=NOW
        )
        steps.append(on_reply(steps[-1].state, reply, NOW, tz))
    events = []
    for step in steps:
        for apply in step.applied:
            changes = await conv.apply_answers(store.db, apply, NOW)
            events.append(conv.lead_updated_event(apply, changes))
        await conv.save_step(store.db, step, NOW)
    [event] = events
    assert event is not None and event.fields.custom == {
        "deal_meeting_rating": 5,
        "deal_next_step": "proposal",
        "deal_close_date": "2026-12-15",
    }
    assert (await conv.load_state(store.db, "rep-1")).sessions == []
    session = await conv.get_session(store.db, steps[0].changed[0].session_id)
    assert session is not None and session.status == "completed"


async def test_deal_value_is_rounded_to_cents_for_the_event(store: Store) -> None:
    """A deal value with fractions of a cent still makes a valid lead.updated event."""
    apply = apply_for("L1", ("v", "deal.value", 12000.1234))
    event = conv.lead_updated_event(apply, await conv.apply_answers(store.db, apply, NOW))
    assert event is not None and str(event.fields.deal_value) == "12000.12"


async def test_late_replay_does_not_revert_a_newer_answer(store: Store) -> None:
    """Replaying an older session's answers after a newer one changed the field changes nothing."""
    older = apply_for("L1", ("s", "deal.stage", "proposal"))
    won = older.answers[0].model_copy(update={"value": "won"})
    newer = older.model_copy(update={"session_id": "qs_2", "answers": [won]})
    await conv.apply_answers(store.db, older, NOW)
    await conv.apply_answers(store.db, newer, NOW)
    assert await conv.apply_answers(store.db, older, NOW) == []
    assert (await profile(store, "L1"))["stage"] == "won"

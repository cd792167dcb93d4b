"""Conversation storage (crm.conversations) against a real SQLite file."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crm import conversations as conv
from crm.record import Source
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
CRM = Source(kind="crm", at=NOW, event_id="e0")


async def seed(store: Store, lead_id: str, **fields: object) -> None:
    """The lead as a CRM event left it (through the record's one writer)."""
    values: dict[str, object] = {}
    for key, value in fields.items():
        if key == "custom":
            assert isinstance(value, dict)
            values.update({f"lead.custom.{k}": v for k, v in value.items()})
        else:
            values[f"lead.{key}"] = value
    await store.merge_fields(lead_id, values, CRM, NOW)


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
    await seed(store, "L1", company="Acme", stage="qualified", custom={"seats": 10})
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
    assert lead["custom"] == {"seats": 10, "furniture_depreciated": False}
    assert lead["deal"] == {"close_date": "2026-12-15", "deal_id": "L1:deal"}
    (deal,) = await store.deals("L1")
    assert (deal["stage"], deal["close_date"]) == ("proposal", "2026-12-15")
    audit = [a for a in await conv.field_changes(store.db, "L1") if a.source != "crm"]
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
    assert len(await conv.field_changes(store.db, "L1")) == 6  # and the CRM's three


async def test_replayed_apply_is_a_no_op(store: Store) -> None:
    """The same ApplyAnswers twice writes no second audit row and changes nothing more."""
    await seed(store, "L1", deal_value=100.0)
    apply = apply_for("L1", ("value", "deal.value", 12000))
    assert len(await conv.apply_answers(store.db, apply, NOW)) == 1
    assert await conv.apply_answers(store.db, apply, NOW) == []
    assert len(await conv.field_changes(store.db, "L1")) == 2  # the CRM's, the answer's


async def test_unchanged_value_leaves_no_audit_row(store: Store) -> None:
    """An answer equal to the current value is stored as an answer but is not a change."""
    await seed(store, "L1", stage="demo")
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
    parsed = LeadFields.model_validate(fields)
    assert parsed.deal is not None and parsed.deal.close_date == dt.date(2026, 12, 15)


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


async def test_note_goes_to_its_lead_never_to_a_guess(store: Store) -> None:
    """Reproduction 5 (storage): a note lands on its own lead's latest activity with the rep;
    a note whose lead is unknown is kept unattached, not put on the rep's latest activity."""
    note = AttachNote(note_id="SM5", rep_id="rep-1", channel="sms", text="call me", received_at=NOW)
    await store.log_activity("a1", "L1", "call.ended", NOW - dt.timedelta(hours=3), rep_id="rep-1")
    await store.log_activity(
        "a2", "L2", "meeting.ended", NOW - dt.timedelta(hours=1), rep_id="rep-1"
    )
    await store.log_activity("a3", "L1", "call.ended", NOW, rep_id="rep-2")
    assert await conv.attach_note(store.db, note, NOW) == (None, None)
    about_l1 = note.model_copy(update={"note_id": "SM6", "lead_id": "L1"})
    assert await conv.attach_note(store.db, about_l1, NOW) == ("a1", "L1")
    assert [n["text"] for n in await conv.notes_for(store.db, "a1")] == ["call me"]
    assert await conv.notes_for(store.db, "a2") == []


async def test_agent_loop_end_to_end(store: Store) -> None:
    """The loop the streams agent runs: start, replies, carry out instructions, save, emit."""
    await seed(store, "L1", company="Acme", stage="demo")
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
    assert event is not None and event.fields.deal is not None
    deal = event.fields.deal.model_dump(mode="json", exclude_none=True)
    assert deal == {
        "custom": {"meeting_rating": 5},
        "next_step": "proposal",
        "close_date": "2026-12-15",
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


async def test_the_lead_agents_flush_never_erases_an_answer(store: Store) -> None:
    """Two writers of one row (reproduction 2): an answer merged into the record survives
    the lead agent's next flush, which carries a profile that never saw the answer."""
    from crm.record import LeadFlush

    await seed(store, "L1", company="Acme", owner_rep_id="rep-1")
    await conv.apply_answers(
        store.db, apply_for("L1", ("why", "lead.custom.no_next_step_reason", "budget")), NOW
    )
    score = {"value": 0.4, "model_version": "points-v1"}
    flush = LeadFlush("L1", [({"lead.stage": "demo"}, CRM)], score, {"features": {}})
    await store.save_lead_states([flush], NOW)
    lead = await profile(store, "L1")
    assert lead["custom"] == {"no_next_step_reason": "budget"}
    assert (lead["company"], lead["owner_rep_id"], lead["stage"]) == ("Acme", "rep-1", "demo")
    assert await store.lead_states(["L1"]) == {
        "L1": ({k: v for k, v in lead.items() if k != "_stage_column"}, {"features": {}})
    }

"""A stateful property test of the record and the conversation, as pure logic.

Hypothesis drives random interleavings of CRM events, worker restarts (the lead table
lost and rebuilt from the store), questionnaires asked, nudges, messages delivered or
suppressed, reminders, and replies (digits, labels, free text, "stop"), through the same
functions the agents call: ``scoring.state`` (table), ``nudge.paths`` (the store's
merge), ``playbooks.conversation`` and ``playbooks.replies``. Invariants:

- no field the store held is ever lost (every field keeps the last value written to it);
- every answer is written to the lead of its session, for a question whose asking was
  delivered to that rep;
- nothing is written from a reply to a question that was not delivered.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from crm.conversations import lead_fields_update
from crm.record import FieldChange
from nudge.events import LeadFields, LeadUpdated
from nudge.paths import get_path, set_path
from playbooks.conversation import (
    ApplyAnswers,
    InboundReply,
    QuestionnaireRequest,
    RepConversations,
    ScheduleTimer,
    SendMessage,
    Step,
    is_current,
    new_state,
    on_reply,
    on_timer,
    start,
)
from playbooks.questionnaire import load_questionnaires
from playbooks.replies import Answer, Prompt, read_reply
from scoring.state import LeadState, apply_event, profile_changes

T0 = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
LEADS = {"A": "Acme", "B": "Birchwood"}
QUESTIONNAIRES = load_questionnaires()
TEXTS = ["1", "2", "3", "4", "5", "yes", "no", "nope", "skip", "done", "stop", "Good",
         "Proposal", "next tuesday", "12k", "Acme wants a demo", "call back monday"]  # fmt: skip


class RecordMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.n = 0
        self.store: dict[str, dict[str, Any]] = {lead: {} for lead in LEADS}
        self.expected: dict[str, dict[str, Any]] = {lead: {} for lead in LEADS}
        self.table: dict[str, LeadState] = {}
        self.checkpoints: dict[str, dict[str, Any]] = {}
        self.conv: RepConversations = new_state("rep-1")
        self.prompts: list[Prompt] = []
        self.delivered: set[tuple[str, str]] = set()
        self.timers: list[ScheduleTimer] = []

    def tick(self) -> dt.datetime:
        self.n += 1
        self.now = T0 + dt.timedelta(minutes=self.n)
        return self.now

    def merge(self, lead: str, values: dict[str, Any]) -> None:
        """The store's one writer: set only what it is given (``crm.record``)."""
        for path, value in values.items():
            set_path(self.store[lead], path, value)
            self.expected[lead][path] = value

    # -- the record ---------------------------------------------------------------
    @rule(lead=st.sampled_from(sorted(LEADS)), key=st.sampled_from(["seats", "budget"]),
          value=st.integers(0, 50))  # fmt: skip
    def crm_event(self, lead: str, key: str, value: int) -> None:
        event = LeadUpdated.model_validate(
            {
                "type": "lead.updated",
                "event_id": f"e{self.n}",
                "occurred_at": self.tick().isoformat(),
                "source": "crm",
                "lead_id": lead,
                "fields": {"company": LEADS[lead], "custom": {key: value}},
            }
        )
        state = self.table.get(lead)
        if state is None:  # the agent rebuilds a missing entry from the store
            state = LeadState.rebuilt(
                lead, copy.deepcopy(self.store[lead]), self.checkpoints.get(lead, {})
            )
        changes = profile_changes(event, state.profile)
        assert apply_event(state, event)
        self.table[lead] = state
        self.merge(lead, changes)  # the flush merges what the event set
        self.checkpoints[lead] = copy.deepcopy(state.checkpoint())

    @rule()
    def restart(self) -> None:
        """A memory broker restarted: the tables are gone; the store is not."""
        self.table = {}

    # -- the conversation ---------------------------------------------------------
    def carry_out(self, step: Step, deliver: list[bool]) -> None:
        self.conv = step.state
        for i, instruction in enumerate(step.instructions):
            if isinstance(instruction, SendMessage) and deliver[i % len(deliver)]:
                self.deliver(instruction)
            elif isinstance(instruction, ScheduleTimer):
                self.timers.append(instruction)
            elif isinstance(instruction, ApplyAnswers):
                self.apply(instruction)

    def deliver(self, message: SendMessage) -> None:
        kind = "closing" if message.message_id.endswith(":end") else "question"
        self.prompts.insert(
            0,
            Prompt(message.message_id, kind, self.now, message.lead_id, None, message.session_id),
        )
        if kind == "question":
            index = int(message.message_id.split(":q")[1].split(":")[0])
            session = next(s for s in self.conv.sessions if s.session_id == message.session_id)
            self.delivered.add((session.session_id, session.questionnaire.questions[index].id))

    def apply(self, apply: ApplyAnswers) -> None:
        for answer in apply.answers:
            assert (apply.session_id, answer.question_id) in self.delivered, (
                f"answer to {answer.question_id}, which was never delivered"
            )
            assert apply.lead_id in LEADS
        fresh = [a for a in apply.answers if a.field]
        if not fresh or apply.lead_id is None:
            return
        lead = apply.lead_id
        self.merge(lead, {a.field: a.value for a in fresh if a.field})
        changes = [
            FieldChange(
                lead_id=lead, field=a.field, old_value=None, new_value=a.value, source="q",
                source_questionnaire=None, session_id=None, question_id=a.question_id,
                rep_id="rep-1", answered_at=a.answered_at,
            )
            for a in fresh
            if a.field
        ]  # fmt: skip
        event = LeadUpdated(
            type="lead.updated",
            event_id=f"{apply.session_id}:answers",
            occurred_at=self.now,
            source="nudge.questionnaire",
            lead_id=lead,
            fields=LeadFields.model_validate(lead_fields_update(changes)),
        )
        state = self.table.get(lead)  # the answers' event reaches the lead agent
        if state is None:
            state = LeadState.rebuilt(
                lead, copy.deepcopy(self.store[lead]), self.checkpoints.get(lead, {})
            )
        apply_event(state, event)
        self.table[lead] = state

    @rule(lead=st.sampled_from(sorted(LEADS)),
          questionnaire=st.sampled_from(["post-meeting", "furniture-depreciated"]),
          deliver=st.lists(st.booleans(), min_size=1, max_size=4))  # fmt: skip
    def ask(self, lead: str, questionnaire: str, deliver: list[bool]) -> None:
        request = QuestionnaireRequest(
            request_id=f"ask{self.n}",
            rep_id="rep-1",
            channel="sms",
            questionnaire_id=questionnaire,
            lead_id=lead,
            subject=LEADS[lead],
            requested_at=self.tick(),
        )
        self.carry_out(start(self.conv, request, QUESTIONNAIRES[questionnaire], self.now), deliver)

    @rule(lead=st.sampled_from(sorted(LEADS)))
    def nudge(self, lead: str) -> None:
        self.prompts.insert(0, Prompt(f"n{self.n}", "nudge", self.tick(), lead, LEADS[lead]))

    @rule(text=st.sampled_from(TEXTS), deliver=st.lists(st.booleans(), min_size=1, max_size=4))
    def reply(self, text: str, deliver: list[bool]) -> None:
        now = self.tick()
        reading = read_reply(text, self.prompts, now)
        active = self.conv.active("sms")
        if not (
            isinstance(reading, Answer)
            and active is not None
            and active.session_id == reading.session_id
            and is_current(self.conv, active.session_id, reading.message_id)
        ):
            return  # a nudge code, a note or "which one?": nothing written to a field
        inbound = InboundReply(
            reply_id=f"r{self.n}", rep_id="rep-1", channel="sms", text=text, received_at=now
        )
        self.carry_out(on_reply(self.conv, inbound, now, ZoneInfo("UTC")), deliver)

    @rule(deliver=st.lists(st.booleans(), min_size=1, max_size=2))
    def timer(self, deliver: list[bool]) -> None:
        if self.timers:
            due = self.timers.pop(0)
            self.tick()
            self.carry_out(on_timer(self.conv, due, due.at), deliver)

    # -- invariants -----------------------------------------------------------------
    @invariant()
    def nothing_the_store_held_is_lost(self) -> None:
        for lead, fields in self.expected.items():
            for path, value in fields.items():
                assert get_path(self.store[lead], path) == value, (lead, path)

    @invariant()
    def a_rebuilt_table_starts_from_the_store(self) -> None:
        for lead, state in self.table.items():
            for key, value in self.store[lead].items():
                assert state.profile.get(key) == value, (lead, key)


RecordMachine.TestCase.settings = settings(
    max_examples=120,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRecordMachine = RecordMachine.TestCase

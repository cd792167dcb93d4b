"""The conversation state machine: one rep's questionnaires, as pure data in and out.

The conversation agent (``streams/``, keyed by rep) keeps one
:class:`RepConversations` per rep and calls three functions, each returning a
:class:`Step` (the new state plus instructions to carry out, in order):

- :func:`start` when an "ask questionnaire" command arrives,
- :func:`on_reply` when the rep's text arrives on ``replies``,
- :func:`on_timer` when a :class:`ScheduleTimer` it was asked to schedule is due.

Nothing here sends, sleeps or stores. Why it is shaped this way:

- **One active questionnaire per channel.** A reply "2" can only mean one thing, so a
  second questionnaire on the same channel waits (``queued``) and starts when the
  first ends. A reply on a channel with no active session is not an answer: it becomes
  an :class:`AttachNote` for the rep's most recent lead activity.
- **Redelivery is harmless.** Every outgoing message has a deterministic id
  (``session:q<index>:a<attempt>``, reminders ``...:r1``, the closing text ``:end``)
  for the outbox; requests and replies already handled (by id) are no-ops.
- **Timers are data.** Reminders and timeouts come back as :class:`ScheduleTimer`
  for the durable scheduler. A timer is never cancelled: when it fires for a
  question that was answered meanwhile, :func:`on_timer` sees that it is stale and
  does nothing.
- **Answers are written once, at the end** (completed, stopped or expired) as one
  :class:`ApplyAnswers`, so the CRM gets one consistent batch with one audit trail.
  Until then they live in the session, which the agent persists (``Step.changed``).
- **A session carries a snapshot of its questionnaire**, so editing the YAML mid-way
  cannot shift question indices under a rep who is answering.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from playbooks.answers import (
    Parsed,
    Skip,
    Stop,
    acknowledge,
    echo,
    parse_answer,
    prompt,
    say,
)
from playbooks.questionnaire import (
    ChoiceQuestion,
    Question,
    Questionnaire,
    Scalar,
    YesNoQuestion,
    follow_ups_for,
)

Channel = Literal["sms", "slack", "console"]
MAX_REASKS = 2
"""Re-asks of one question after an unreadable reply; then it is skipped."""
RECENT_IDS = 200
"""How many handled request/reply ids a rep's state remembers for de-duplication."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- inputs --------------------------------------------------------------------------


class QuestionnaireRequest(_Model):
    """An "ask questionnaire" command: ask ``rep_id`` questionnaire ``questionnaire_id``."""

    request_id: str = Field(min_length=1, description="deterministic id of the command")
    rep_id: str
    channel: Channel
    questionnaire_id: str
    lead_id: str | None = None
    subject: str | None = Field(default=None, description="shown in the intro, e.g. 'Acme'")
    activity_id: str | None = Field(default=None, description="the call/meeting asked about")
    requested_at: AwareDatetime


class InboundReply(_Model):
    """One text from a rep, as it arrives on ``replies`` (opt-out keywords never do)."""

    reply_id: str = Field(min_length=1, description="provider message id (Twilio SID, Slack ts)")
    rep_id: str
    channel: Channel
    text: str
    received_at: AwareDatetime


# --- state ---------------------------------------------------------------------------


class Answer(_Model):
    question_id: str
    field: str | None
    value: Scalar
    raw: str
    answered_at: AwareDatetime


class Session(_Model):
    """One questionnaire put to one rep: where it stands and what was answered so far."""

    session_id: str
    request: QuestionnaireRequest
    questionnaire: Questionnaire
    status: Literal["queued", "active", "completed", "stopped", "expired"] = "queued"
    pending: list[str] = Field(default=[], description="question ids still to ask; current first")
    attempt: int = 0
    prompts_sent: int = 0
    reminded: bool = False
    answers: list[Answer] = []
    asked_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None

    @property
    def channel(self) -> Channel:
        return self.request.channel

    @property
    def current(self) -> Question | None:
        return self.questionnaire.question(self.pending[0]) if self.pending else None


class RepConversations(_Model):
    """Everything the conversation agent keeps for one rep (its table value)."""

    rep_id: str
    sessions: list[Session] = Field(default=[], description="active and queued, oldest first")
    recent_ids: list[str] = []

    def active(self, channel: Channel) -> Session | None:
        return next(
            (s for s in self.sessions if s.status == "active" and s.channel == channel), None
        )


# --- instructions --------------------------------------------------------------------


class SendMessage(_Model):
    """Send ``text`` to the rep; ``message_id`` is the outbox id (never sent twice)."""

    kind: Literal["send"] = "send"
    message_id: str
    rep_id: str
    channel: Channel
    session_id: str
    lead_id: str | None
    text: str
    buttons: list[str] = Field(
        default=[],
        description="labels a channel with buttons (Slack) may offer; a click replies the label",
    )


class ScheduleTimer(_Model):
    """Call :func:`on_timer` with this object at ``at`` (durably; stale ones are no-ops).

    Store it in the durable scheduler under ``timer_id`` (adding it twice keeps one
    row) with ``rep_id`` as the partition key, and the whole object as the payload.
    """

    kind: Literal["timer"] = "timer"
    timer_id: str
    rep_id: str
    session_id: str
    at: AwareDatetime
    step: Literal["remind", "expire"]
    question_index: int
    attempt: int


class ApplyAnswers(_Model):
    """Write these answers to the lead's CRM fields, with audit rows (crm.conversations)."""

    kind: Literal["apply"] = "apply"
    session_id: str
    rep_id: str
    lead_id: str | None
    questionnaire_id: str
    activity_id: str | None
    outcome: Literal["completed", "stopped", "expired"]
    answers: list[Answer]


class AttachNote(_Model):
    """A text outside any session: a note on ``lead_id`` (``None``: not known — kept
    unattached, and the rep is asked which lead it is about)."""

    kind: Literal["note"] = "note"
    note_id: str
    rep_id: str
    lead_id: str | None = None
    channel: Channel
    text: str
    received_at: AwareDatetime


Instruction = Annotated[
    SendMessage | ScheduleTimer | ApplyAnswers | AttachNote, Field(discriminator="kind")
]


class Step(_Model):
    """The result of one call: new state, instructions in order, sessions to persist."""

    state: RepConversations
    instructions: list[Instruction] = []
    changed: list[Session] = Field(default=[], description="sessions whose stored row is stale")

    @property
    def messages(self) -> list[SendMessage]:
        return [i for i in self.instructions if isinstance(i, SendMessage)]

    @property
    def applied(self) -> list[ApplyAnswers]:
        return [i for i in self.instructions if isinstance(i, ApplyAnswers)]

    @property
    def ended(self) -> list[Session]:
        return [s for s in self.changed if s.ended_at is not None]


# --- ids -----------------------------------------------------------------------------


def session_id_for(request: QuestionnaireRequest) -> str:
    """The same request always opens the same session."""
    key = "\x1f".join((request.request_id, request.rep_id, request.questionnaire_id))
    return "qs_" + hashlib.sha256(key.encode()).hexdigest()[:20]


def message_id(session_id: str, question_index: int, attempt: int, suffix: str = "") -> str:
    return f"{session_id}:q{question_index}:a{attempt}{suffix}"


def is_current(state: RepConversations, session_id: str, asked_by: str) -> bool:
    """Is ``asked_by`` (a delivered message id) the asking of ``session_id``'s current
    question — its prompt, a re-ask or its reminder? Only then is a reply its answer: a
    next question that was never delivered is not open."""
    session = next((s for s in state.sessions if s.session_id == session_id), None)
    if session is None or session.status != "active" or session.current is None:
        return False
    index = session.questionnaire.index_of(session.current.id)
    return asked_by.startswith(f"{session_id}:q{index}:")


# --- the three entry points ----------------------------------------------------------


def new_state(rep_id: str) -> RepConversations:
    return RepConversations(rep_id=rep_id)


def start(
    state: RepConversations,
    request: QuestionnaireRequest,
    questionnaire: Questionnaire,
    now: dt.datetime,
) -> Step:
    """Open a session for ``request``: asked now if its channel is free, else queued."""
    turn = _Turn(state.model_copy(deep=True), now)
    sid = session_id_for(request)
    if turn.seen(request.request_id) or any(s.session_id == sid for s in turn.state.sessions):
        return turn.step()
    session = Session(
        session_id=sid,
        request=request,
        questionnaire=questionnaire,
        pending=questionnaire.first_pass(),
    )
    turn.state.sessions.append(session)
    turn.changed.append(session)
    turn.activate_next(request.channel)
    return turn.step()


def on_reply(state: RepConversations, reply: InboundReply, now: dt.datetime, tz: dt.tzinfo) -> Step:
    """Read ``reply`` as the answer to the current question of its channel's session."""
    turn = _Turn(state.model_copy(deep=True), now)
    if turn.seen(reply.reply_id):
        return turn.step()
    session = turn.state.active(reply.channel)
    if session is None or session.current is None:
        note = AttachNote(
            note_id=reply.reply_id,
            rep_id=reply.rep_id,
            channel=reply.channel,
            text=reply.text,
            received_at=reply.received_at,
        )
        return Step(state=turn.state, instructions=[note])
    question = session.current
    result = parse_answer(question, reply.text, now=reply.received_at, tz=tz)
    turn.changed.append(session)
    if isinstance(result, Stop):
        turn.finish(session, "stopped")
    elif isinstance(result, Parsed):
        session.answers.append(
            Answer(
                question_id=question.id,
                field=question.field,
                value=result.value,
                raw=reply.text,
                answered_at=reply.received_at,
            )
        )
        asked = {a.question_id for a in session.answers}
        extra = [qid for qid in follow_ups_for(question, result.value) if qid not in asked]
        session.pending[1:1] = [qid for qid in dict.fromkeys(extra) if qid not in session.pending]
        if len(session.pending) > 1:  # the next question says which lead this was for
            turn.advance(session, acknowledge(question, result.value, _subject(session)))
        else:  # the closing text names the lead
            turn.advance(session, echo(question, result.value))
    elif isinstance(result, Skip):
        turn.advance(session, "")
    elif session.attempt < MAX_REASKS:
        session.attempt += 1
        turn.send(session, result.reask)
    else:
        turn.advance(session, say("gave_up") + " ")
    return turn.step()


def on_timer(state: RepConversations, timer: ScheduleTimer, now: dt.datetime) -> Step:
    """A reminder or timeout is due; a stale one (question moved on) does nothing."""
    turn = _Turn(state.model_copy(deep=True), now)
    session = next(
        (s for s in turn.state.sessions if s.session_id == timer.session_id),
        None,
    )
    if session is None or session.status != "active" or session.current is None:
        return turn.step()
    index = session.questionnaire.index_of(session.current.id)
    if (index, session.attempt) != (timer.question_index, timer.attempt):
        return turn.step()
    if timer.step == "expire":
        turn.changed.append(session)
        turn.finish(session, "expired")
    elif not session.reminded:
        session.reminded = True
        turn.changed.append(session)
        text = say("reminder", prompt=prompt(session.current))
        turn.out.append(
            _message(
                session,
                message_id(session.session_id, index, session.attempt, ":r1"),
                text,
                session.current,
            )
        )
    return turn.step()


# --- helpers -------------------------------------------------------------------------


def _subject(session: Session) -> str:
    """The lead a session is about, as the rep knows it (its company)."""
    return session.request.subject or session.request.lead_id or "your last meeting"


def _message(
    session: Session, mid: str, text: str, question: Question | None = None
) -> SendMessage:
    """A message of ``session``; asking ``question`` adds its one-tap buttons."""
    buttons: list[str] = []
    if isinstance(question, ChoiceQuestion):
        buttons = [o.label for o in question.options]
    elif isinstance(question, YesNoQuestion):
        buttons = ["Yes", "No"]
    return SendMessage(
        message_id=mid,
        rep_id=session.request.rep_id,
        channel=session.channel,
        session_id=session.session_id,
        lead_id=session.request.lead_id,
        text=text,
        buttons=buttons,
    )


@dataclass
class _Turn:
    """One call's working set: the (copied) state, the clock, and what it produces."""

    state: RepConversations
    now: dt.datetime
    out: list[Instruction] = field(default_factory=list)
    changed: list[Session] = field(default_factory=list)

    def step(self) -> Step:
        unique = list({s.session_id: s for s in self.changed}.values())
        return Step(state=self.state, instructions=self.out, changed=unique)

    def seen(self, some_id: str) -> bool:
        """True if ``some_id`` was handled before; else remember it."""
        if some_id in self.state.recent_ids:
            return True
        self.state.recent_ids = [*self.state.recent_ids, some_id][-RECENT_IDS:]
        return False

    def send(self, session: Session, text: str) -> None:
        """Send ``text`` for the current question and schedule its reminder and timeout."""
        assert session.current is not None
        q = session.questionnaire
        index = q.index_of(session.current.id)
        mid = message_id(session.session_id, index, session.attempt)
        self.out.append(_message(session, mid, text, session.current))
        session.prompts_sent += 1
        session.asked_at = self.now
        session.reminded = False
        steps: tuple[tuple[Literal["remind", "expire"], int], ...] = (
            ("remind", q.remind_after_minutes),
            ("expire", q.expire_after_minutes),
        )
        for step, minutes in steps:
            self.out.append(
                ScheduleTimer(
                    timer_id=f"{mid}:{step}",
                    rep_id=session.request.rep_id,
                    session_id=session.session_id,
                    at=self.now + dt.timedelta(minutes=minutes),
                    step=step,
                    question_index=index,
                    attempt=session.attempt,
                )
            )

    def ask(self, session: Session, prefix: str) -> None:
        """Ask the current question afresh (the intro goes before the very first one)."""
        assert session.current is not None
        session.attempt = 0
        text = prefix + prompt(session.current)
        if session.prompts_sent == 0 and session.questionnaire.intro:
            subject = session.request.subject or "your last meeting"
            text = session.questionnaire.intro.replace("{subject}", subject) + " " + text
        self.send(session, text)

    def advance(self, session: Session, prefix: str) -> None:
        session.pending.pop(0)
        if session.pending:
            self.ask(session, prefix)
        else:
            self.finish(session, "completed", prefix)

    def finish(
        self,
        session: Session,
        outcome: Literal["completed", "stopped", "expired"],
        prefix: str = "",
    ) -> None:
        """End ``session``: closing text, answers to apply, then the next queued one starts."""
        session.status = outcome
        session.ended_at = self.now
        n = len(session.answers)
        key = {"completed": "done" if n else "done_none", "stopped": "stopped"}.get(
            outcome, outcome
        )
        subject = _subject(session)
        text = prefix + say(key, n=n, s="" if n == 1 else "s", subject=subject)
        self.out.append(_message(session, f"{session.session_id}:end", text))
        if session.answers:
            self.out.append(
                ApplyAnswers(
                    session_id=session.session_id,
                    rep_id=session.request.rep_id,
                    lead_id=session.request.lead_id,
                    questionnaire_id=session.questionnaire.id,
                    activity_id=session.request.activity_id,
                    outcome=outcome,
                    answers=session.answers,
                )
            )
        self.state.sessions = [s for s in self.state.sessions if s.session_id != session.session_id]
        self.changed.append(session)
        self.activate_next(session.channel)

    def activate_next(self, channel: Channel) -> None:
        """Start the oldest queued session of a free ``channel``; stale queued ones expire."""
        if self.state.active(channel) is not None:
            return
        for session in [
            s for s in self.state.sessions if s.channel == channel and s.status == "queued"
        ]:
            limit = dt.timedelta(minutes=session.questionnaire.expire_after_minutes)
            if self.now - session.request.requested_at > limit:
                session.status, session.ended_at = "expired", self.now
                self.state.sessions.remove(session)
                self.changed.append(session)
                continue
            session.status = "active"
            self.changed.append(session)
            self.ask(session, "")
            return

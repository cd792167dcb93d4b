"""The conversation state machine (playbooks.conversation), driven with plain data."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from playbooks.conversation import (
    MAX_REASKS,
    ApplyAnswers,
    AttachNote,
    InboundReply,
    QuestionnaireRequest,
    RepConversations,
    ScheduleTimer,
    SendMessage,
    Step,
    new_state,
    on_reply,
    on_timer,
    start,
)
from playbooks.questionnaire import Questionnaire, load_questionnaires

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
NY = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def shipped() -> dict[str, Questionnaire]:
    return load_questionnaires()


def request(
    qid: str, n: int = 1, channel: str = "sms", at: dt.datetime = NOW
) -> QuestionnaireRequest:
    return QuestionnaireRequest(
        request_id=f"cmd-{n}",
        rep_id="rep-1",
        channel=channel,  # type: ignore[arg-type]
        questionnaire_id=qid,
        lead_id="lead-1",
        subject="Acme",
        requested_at=at,
    )


class Rep:
    """A rep's conversation state, advanced one reply at a time."""

    def __init__(self) -> None:
        self.state: RepConversations = new_state("rep-1")
        self.n = 0

    def start(self, q: Questionnaire, n: int = 1, channel: str = "sms") -> Step:
        step = start(self.state, request(q.id, n, channel), q, NOW)
        self.state = step.state
        return step

    def say(self, text: str, channel: str = "sms", reply_id: str | None = None) -> Step:
        self.n += 1
        reply = InboundReply(
            reply_id=reply_id or f"SM{self.n}",
            rep_id="rep-1",
            channel=channel,  # type: ignore[arg-type]
            text=text,
            received_at=NOW + dt.timedelta(minutes=self.n),
        )
        step = on_reply(self.state, reply, NOW + dt.timedelta(minutes=self.n), NY)
        self.state = step.state
        return step

    def fire(self, timer: ScheduleTimer) -> Step:
        step = on_timer(self.state, timer, timer.at)
        self.state = step.state
        return step


def texts(step: Step) -> list[str]:
    return [m.text for m in step.messages]


def timers(step: Step) -> list[ScheduleTimer]:
    return [i for i in step.instructions if isinstance(i, ScheduleTimer)]


def test_start_sends_intro_and_first_question(shipped: dict[str, Questionnaire]) -> None:
    """Starting on a free channel sends the intro with question 1 and schedules its timers."""
    step = Rep().start(shipped["post-meeting"])
    [text] = texts(step)
    assert text.startswith("Quick questions about Acme.") and "5 Great" in text
    assert [t.step for t in timers(step)] == ["remind", "expire"]
    assert timers(step)[0].at == NOW + dt.timedelta(hours=2)


def test_full_run_applies_answers_once_at_the_end(shipped: dict[str, Questionnaire]) -> None:
    """Three readable replies complete post-meeting and yield one ApplyAnswers with all three."""
    rep = Rep()
    rep.start(shipped["post-meeting"])
    great = rep.say("Great 👍")
    assert great.applied == []
    assert texts(great)[0].startswith("Noted for Acme. Next step?")  # names the lead
    rep.say("1")
    last = rep.say("next tuesday")
    [apply] = last.applied
    assert apply.outcome == "completed"
    assert [(a.field, a.value) for a in apply.answers] == [
        ("deal.meeting_rating", 5),
        ("deal.next_step", "proposal"),
        ("deal.close_date", "2026-12-01"),
    ]
    assert texts(last) == ["Got Tue Dec 1. Thanks, saved 3 answers on Acme."]
    assert rep.state.sessions == [] and last.ended[0].status == "completed"


def test_follow_up_is_asked_only_when_its_answer_matches(shipped: dict[str, Questionnaire]) -> None:
    """ "None" as next step asks why-not before the close date; other answers do not."""
    rep = Rep()
    rep.start(shipped["post-meeting"])
    rep.say("4")
    assert texts(rep.say("None")) == ["Noted for Acme. Why no next step? (a few words)"]
    assert "close date" in texts(rep.say("budget frozen"))[0]


def test_yes_no_follow_up_on_no(shipped: dict[str, Questionnaire]) -> None:
    """furniture-depreciated asks for the date only after a no."""
    rep = Rep()
    rep.start(shipped["furniture-depreciated"])
    assert "When will it be" in texts(rep.say("nope"))[0]
    other = Rep()
    other.start(shipped["furniture-depreciated"])
    assert other.say("yes 👍").applied[0].answers[0].value is True


def test_unreadable_reasks_twice_then_skips(shipped: dict[str, Questionnaire]) -> None:
    """Two re-asks with new message ids, then the question is skipped and the next asked."""
    rep = Rep()
    rep.start(shipped["influencer-support"])
    first = rep.say("hmm")
    second = rep.say("what?")
    assert [m.message_id.rsplit(":", 1)[1] for m in first.messages + second.messages] == [
        "a1",
        "a2",
    ]
    assert MAX_REASKS == 2
    third = rep.say("??")
    assert texts(third)[0].startswith("Skipping that one. Does finance")
    assert rep.say("yes").applied[0].answers[0].question_id == "finance"


def test_skip_and_stop(shipped: dict[str, Questionnaire]) -> None:
    """skip leaves a question unanswered; stop ends the session and keeps earlier answers."""
    rep = Rep()
    rep.start(shipped["post-meeting"])
    rep.say("skip")
    step = rep.say("stop")
    assert step.applied == []  # nothing answered, nothing to write
    assert step.ended[0].status == "stopped" and texts(step) == [
        "OK, stopped. Saved 0 answers on Acme."
    ]
    rep2 = Rep()
    rep2.start(shipped["post-meeting"])
    rep2.say("3")
    step2 = rep2.say("no more questions")
    assert step2.applied[0].outcome == "stopped"
    assert [a.question_id for a in step2.applied[0].answers] == ["rating"]
    assert texts(step2) == ["OK, stopped. Saved 1 answer on Acme."]


def test_second_questionnaire_queues_then_starts(shipped: dict[str, Questionnaire]) -> None:
    """A second questionnaire on the same channel waits and starts when the first ends."""
    rep = Rep()
    rep.start(shipped["influencer-support"], n=1)
    queued = rep.start(shipped["furniture-depreciated"], n=2)
    assert queued.instructions == [] and queued.changed[0].status == "queued"
    rep.say("y")
    end = rep.say("n")
    assert [m.message_id.split(":")[-1] for m in end.messages] == ["end", "a0"]
    assert "furniture" in texts(end)[1]
    assert [s.status for s in rep.state.sessions] == ["active"]


def test_channels_are_independent(shipped: dict[str, Questionnaire]) -> None:
    """A Slack questionnaire does not wait for an SMS one."""
    rep = Rep()
    rep.start(shipped["influencer-support"], n=1, channel="sms")
    slack = rep.start(shipped["furniture-depreciated"], n=2, channel="slack")
    assert len(slack.messages) == 1 and slack.messages[0].channel == "slack"


def test_text_outside_a_session_becomes_a_note() -> None:
    """With no active session on the channel, a reply is an AttachNote, not an answer."""
    step = Rep().say("they want 40 chairs by March", reply_id="SM9")
    [note] = step.instructions
    assert isinstance(note, AttachNote) and note.note_id == "SM9"


def test_redelivered_reply_and_request_are_no_ops(shipped: dict[str, Questionnaire]) -> None:
    """The same reply id or request id handled twice changes nothing and sends nothing."""
    rep = Rep()
    rep.start(shipped["post-meeting"])
    assert rep.start(shipped["post-meeting"]).instructions == []
    rep.say("5", reply_id="SMx")
    again = rep.say("1", reply_id="SMx")
    assert again.instructions == []
    assert rep.state.sessions[0].pending[0] == "next-step"


def test_same_input_same_message_ids(shipped: dict[str, Questionnaire]) -> None:
    """Replaying a reply against the old state yields identical message ids (outbox dedupes)."""
    rep = Rep()
    rep.start(shipped["post-meeting"])
    before = rep.state
    reply = InboundReply(reply_id="SM1", rep_id="rep-1", channel="sms", text="2", received_at=NOW)
    a = on_reply(before, reply, NOW, NY)
    b = on_reply(before, reply, NOW, NY)
    assert [m.message_id for m in a.messages] == [m.message_id for m in b.messages]
    assert isinstance(a.instructions[0], SendMessage)
    assert before.sessions[0].pending[0] == "rating"  # the input state was not mutated


def test_reminder_then_timeout(shipped: dict[str, Questionnaire]) -> None:
    """The remind timer re-sends the question once; the expire timer ends and saves answers."""
    rep = Rep()
    rep.start(shipped["post-meeting"])
    step = rep.say("5")
    remind, expire = timers(step)
    reminded = rep.fire(remind)
    assert texts(reminded)[0].startswith("Reminder: Next step?")
    assert reminded.messages[0].message_id.endswith(":r1")
    assert rep.fire(remind).instructions == []  # a second firing is a no-op
    ended = rep.fire(expire)
    assert ended.applied[0].outcome == "expired"
    assert [a.question_id for a in ended.applied[0].answers] == ["rating"]


def test_stale_timer_does_nothing(shipped: dict[str, Questionnaire]) -> None:
    """A timer for a question already answered is ignored, not cancelled."""
    rep = Rep()
    first = rep.start(shipped["post-meeting"])
    rep.say("5")
    for timer in timers(first):
        assert rep.fire(timer).instructions == []
    assert rep.state.sessions[0].pending[0] == "next-step"


def test_stale_queued_session_expires_silently(shipped: dict[str, Questionnaire]) -> None:
    """A questionnaire queued longer than its expiry is dropped when its turn comes."""
    rep = Rep()
    first = rep.start(shipped["influencer-support"], n=1)
    rep.start(shipped["furniture-depreciated"], n=2)
    expire = timers(first)[1]
    late = expire.at + dt.timedelta(hours=1)
    step = on_timer(rep.state, expire, late)
    assert {s.status for s in step.ended} == {"expired"} and len(step.ended) == 2
    assert [m.message_id.split(":")[-1] for m in step.messages] == ["end"]
    assert step.state.sessions == []


def test_apply_answers_is_a_discriminated_instruction(shipped: dict[str, Questionnaire]) -> None:
    """Instructions round-trip through JSON with their kind, as they would on a topic."""
    rep = Rep()
    rep.start(shipped["furniture-depreciated"])
    step = rep.say("yes")
    again = Step.model_validate_json(step.model_dump_json())
    assert isinstance(again.instructions[-1], ApplyAnswers)


@pytest.mark.parametrize("qid", ["post-meeting", "furniture-depreciated", "influencer-support"])
def test_first_text_fits_one_sms_segment(shipped: dict[str, Questionnaire], qid: str) -> None:
    """The intro plus the first question fits 160 GSM-7 characters for a 20-letter company."""
    req = request(qid).model_copy(update={"subject": "X" * 20})
    [message] = start(new_state("rep-1"), req, shipped[qid], NOW).messages
    assert len(message.text) <= 160 and message.text.isascii(), message.text


def test_buttons_are_labels_the_parser_reads(shipped: dict[str, Questionnaire]) -> None:
    """Choice and yes/no prompts carry button labels; replying a label answers the question."""
    rep = Rep()
    [first] = rep.start(shipped["post-meeting"]).messages
    assert first.buttons == ["Bad", "Meh", "OK", "Good", "Great"]
    assert rep.say(first.buttons[3]).messages[0].buttons[0] == "Proposal"
    assert rep.state.sessions[0].answers[0].value == 4
    assert rep.say("Demo").messages[0].buttons == []  # the date question has none

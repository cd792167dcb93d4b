"""Reading a reply against what was delivered (playbooks.replies): the record's
reproductions 3, 4 and 5 at the level of the pure matcher."""

from __future__ import annotations

import datetime as dt

from playbooks.replies import Act, Answer, Note, Prompt, Which, read_reply

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


def ago(minutes: float) -> dt.datetime:
    return NOW - dt.timedelta(minutes=minutes)


def question(lead: str, company: str, minutes: float, session: str = "qs_a") -> Prompt:
    return Prompt(f"{session}:q0:a0", "question", ago(minutes), lead, company, session)


def nudge(lead: str, company: str, minutes: float, kind: str = "nudge") -> Prompt:
    return Prompt(f"n_{lead}_{minutes}", kind, ago(minutes), lead, company)  # type: ignore[arg-type]


def test_a_code_after_a_later_nudge_answers_the_nudge_not_the_question() -> None:
    """Reproduction 3: an open question on A, then a nudge on B: "1" logs a call on B."""
    prompts = [nudge("B", "Birchwood", 1), question("A", "Acme", 90)]
    assert read_reply("1", prompts, NOW) == Act("log_call", "B", "Birchwood", "n_B_1")


def test_the_latest_delivered_question_takes_any_reply() -> None:
    """While a question is the newest delivered prompt, "1" and free text answer it."""
    prompts = [question("A", "Acme", 1), nudge("B", "Birchwood", 90)]
    assert read_reply("1", prompts, NOW) == Answer("qs_a", "qs_a:q0:a0")
    assert read_reply("went well", prompts, NOW) == Answer("qs_a", "qs_a:q0:a0")


def test_an_undelivered_question_is_not_open() -> None:
    """Reproduction 4: a question that was never delivered is not among the prompts, so a
    reply is not its answer: "nope" is a note on the lead the rep was last nudged about."""
    prompts = [nudge("B", "Birchwood", 5)]
    assert read_reply("nope", prompts, NOW) == Note("B", "Birchwood", "nope")
    assert read_reply("nope", [], NOW) == Note(None, None, "nope")


def test_notes_go_to_the_lead_named_or_the_latest_nudged() -> None:
    """Reproduction 5: free text goes to the company it names, else the newest prompt's
    lead while recent, else Nudge asks."""
    prompts = [nudge("B", "Birchwood", 5), nudge("A", "Acme", 200)]
    assert read_reply("they want a demo", prompts, NOW).lead_id == "B"  # type: ignore[union-attr]
    assert read_reply("acme wants a demo", prompts, NOW).lead_id == "A"  # type: ignore[union-attr]
    stale = [nudge("B", "Birchwood", 60 * 30)]
    assert read_reply("they want a demo", stale, NOW) == Note(None, None, "they want a demo")


def test_a_code_after_a_digest_asks_which_one() -> None:
    """Reproduction 5: after a digest about several leads, "1" asks which; "1B" and
    "1 Acme" then pick the lead."""
    digest = [nudge("A", "Acme", 2, "digest"), nudge("C", "Cobalt", 2, "digest")]
    which = read_reply("1", digest, NOW)
    assert isinstance(which, Which)
    assert which.text == "Which one? Reply 1A Acme, 1B Cobalt."
    asked = [Prompt("ack-which", "which", ago(1)), *digest]
    assert read_reply("1B", asked, NOW) == Act("log_call", "C", "Cobalt", "n_C_2")
    assert read_reply("2 acme", asked, NOW) == Act("snooze", "A", "Acme", "n_A_2")


def test_two_close_nudges_make_a_bare_code_ambiguous() -> None:
    """Nudges about two leads minutes apart: "3" asks which; one lead alone: it applies."""
    prompts = [nudge("B", "Birchwood", 1), nudge("A", "Acme", 4)]
    assert isinstance(read_reply("3", prompts, NOW), Which)
    assert read_reply("3", prompts[:1], NOW) == Act("not_relevant", "B", "Birchwood", "n_B_1")
    far = [nudge("B", "Birchwood", 1), nudge("A", "Acme", 120)]
    assert read_reply("3", far, NOW) == Act("not_relevant", "B", "Birchwood", "n_B_1")


def test_a_note_naming_a_known_lead_goes_to_it() -> None:
    """A note naming one of the rep's leads goes there even if no message was about it;
    a bare code never picks a lead that was not messaged."""
    known = Prompt("known:A", "known", ago(10**6), "A", "Acme")
    prompts = [nudge("B", "Birchwood", 5), known]
    assert read_reply("Acme asked for references", prompts, NOW).lead_id == "A"  # type: ignore[union-attr]
    assert read_reply("1", [known], NOW) == Which("1", [])
    assert read_reply("1 acme", [known], NOW) == Act("log_call", "A", "Acme", "")


def test_only_the_delivered_asking_of_the_current_question_takes_an_answer() -> None:
    """After q0 is answered, q1 is current; if q1's message was not delivered, the newest
    delivered prompt is still q0's, and a reply to it is not an answer to q1."""
    from zoneinfo import ZoneInfo

    from playbooks.conversation import (
        InboundReply,
        QuestionnaireRequest,
        is_current,
        new_state,
        on_reply,
        start,
    )
    from playbooks.questionnaire import load_questionnaires

    q = load_questionnaires()["post-meeting"]
    request = QuestionnaireRequest(
        request_id="cmd-1", rep_id="rep-1", channel="sms", questionnaire_id=q.id,
        lead_id="A", subject="Acme", requested_at=NOW,
    )  # fmt: skip
    step = start(new_state("rep-1"), request, q, NOW)
    [asked_q0] = step.messages
    sid = asked_q0.session_id
    assert is_current(step.state, sid, asked_q0.message_id)
    reply = InboundReply(reply_id="SM1", rep_id="rep-1", channel="sms", text="4", received_at=NOW)
    step = on_reply(step.state, reply, NOW, ZoneInfo("UTC"))
    [asked_q1] = [m for m in step.messages if m.message_id.startswith(f"{sid}:q1:")]
    assert not is_current(step.state, sid, asked_q0.message_id)  # q0's asking: answered
    assert is_current(step.state, sid, asked_q1.message_id)
    assert is_current(step.state, sid, asked_q1.message_id + ":r1")  # its reminder


def coded(lead: str, company: str, minutes: float, code: str) -> Prompt:
    return Prompt(f"n_{lead}_{minutes}", "nudge", ago(minutes), lead, company, code=code)


def test_a_coded_reply_answers_its_own_message_whatever_came_after() -> None:
    """ "1A" logs a call on the lead of the message that offered 1A, even after a newer
    nudge and an open question; a bare "1" between two close nudges asks which one,
    naming each by its message's own letter."""
    prompts = [coded("B", "Birchwood", 1, "B"), coded("A", "Acme", 4, "A")]
    assert read_reply("1A", prompts, NOW) == Act("log_call", "A", "Acme", "n_A_4")
    assert read_reply("2b", prompts, NOW) == Act("snooze", "B", "Birchwood", "n_B_1")
    which = read_reply("1", prompts, NOW)
    assert isinstance(which, Which) and which.text == "Which one? Reply 1B Birchwood, 1A Acme."
    after_which = [Prompt("ack-which", "which", ago(0.5)), *prompts]
    assert read_reply("1A", after_which, NOW) == Act("log_call", "A", "Acme", "n_A_4")


def test_letters_offered_for_a_digest_avoid_the_letters_messages_carry() -> None:
    """A "which one?" over a digest and a coded nudge gives the digest's leads letters no
    message carries, so a letter never means two leads."""
    prompts = [
        nudge("C", "Cobalt", 1, "digest"),
        nudge("D", "Delta", 1, "digest"),
        coded("A", "Acme", 3, "A"),
    ]
    which = read_reply("1", prompts, NOW)
    assert isinstance(which, Which)
    assert which.text == "Which one? Reply 1B Cobalt, 1C Delta, 1A Acme."
    asked = [Prompt("ack-which", "which", ago(0.5)), *prompts]
    assert read_reply("1B", asked, NOW) == Act("log_call", "C", "Cobalt", "n_C_1")

"""Answer parsing over a table of real-world replies (playbooks.answers)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playbooks.answers import TEXTS, Parsed, Skip, Stop, Unreadable, parse_answer, parse_date
from playbooks.questionnaire import (
    ChoiceQuestion,
    DateQuestion,
    NumberQuestion,
    Question,
    TextQuestion,
    YesNoQuestion,
)

NY = ZoneInfo("America/New_York")
# Monday 23 Nov 2026, 15:00 UTC = 10:00 in New York
NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)

YN = YesNoQuestion(type="yes_no", id="yn", text="Depreciated?")
RATING = ChoiceQuestion.model_validate(
    {
        "type": "choice",
        "id": "rating",
        "text": "How did it go?",
        "options": [
            {"label": "Bad", "value": 1},
            {"label": "Meh", "value": 2},
            {"label": "OK", "value": 3},
            {"label": "Good", "value": 4},
            {"label": "Great", "value": 5},
        ],
    }
)
NEXT = ChoiceQuestion.model_validate(
    {
        "type": "choice",
        "id": "next",
        "text": "Next step?",
        "options": ["Proposal", "Demo", "Another meeting", "None"],
    }
)
SEATS = NumberQuestion(type="number", id="seats", text="Seats?", unit="seats", min=1, max=5000)
MONEY = NumberQuestion(type="number", id="budget", text="Budget?", unit="USD")
WHEN = DateQuestion(type="date", id="close", text="Close date?")
NOTE = TextQuestion(type="text", id="why", text="Why?", max_length=20)

CASES: list[tuple[Question, str, object]] = [
    # yes / no: spelling, case, emoji, extra words, other languages
    (YN, "yes", True),
    (YN, "Y", True),
    (YN, "YES!!", True),
    (YN, "yep", True),
    (YN, "yeah 👍", True),
    (YN, "👍", True),
    (YN, "✅", True),
    (YN, "Yes I think so", True),
    (YN, "sure, why not", True),
    (YN, "of course", True),
    (YN, "sí", True),
    (YN, "Si", True),
    (YN, "oui", True),
    (YN, "Ja", True),
    (YN, "sim", True),
    (YN, "no", False),
    (YN, "N", False),
    (YN, "nope", False),
    (YN, "Nah 👎", False),
    (YN, "not yet", False),
    (YN, "not really tbh", False),
    (YN, "nein", False),
    (YN, "non", False),
    (YN, "não", False),
    (YN, "I think they said no", False),
    (YN, "yes and no", Unreadable),
    (YN, "yes, but no budget", Unreadable),  # mixed signals are re-asked, not guessed
    (YN, "yeah nah", Unreadable),
    (YN, "no problem", True),
    (YN, "👍🏽", True),  # skin-tone modifier
    (YN, "maybe", Unreadable),
    (YN, "🤷", Unreadable),
    # choice: number, label, label among words, emoji
    (RATING, "5", 5),
    (RATING, "1", 1),
    (RATING, "#4", 4),
    (RATING, "Great", 5),
    (RATING, "great!! 🎉", 5),
    (RATING, "it was GOOD", 4),
    (RATING, "ok", 3),
    (RATING, "6", Unreadable),
    (RATING, "good or great", Unreadable),
    (NEXT, "3", "Another meeting"),
    (NEXT, "another meeting", "Another meeting"),
    (NEXT, "2 - demo next week", "Demo"),
    (NEXT, "they want a demo", "Demo"),
    # numbers with units
    (SEATS, "3 seats", 3),
    (SEATS, "three", 3),
    (SEATS, "about 40 desks", 40),
    (SEATS, "1,200", 1200),
    (SEATS, "12k", Unreadable),  # above max 5000
    (SEATS, "between 10 and 20", Unreadable),
    (MONEY, "12k", 12000),
    (MONEY, "$12,000", 12000),
    (MONEY, "$12,000.50", 12000.5),
    (MONEY, "2.5", 2.5),
    (MONEY, "2,5", 2.5),
    (MONEY, "1.2M", 1200000),
    (MONEY, "around 50K I'd say", 50000),
    (MONEY, "lots", Unreadable),
    # dates, relative to Monday 23 Nov 2026 in New York
    (WHEN, "tomorrow", "2026-11-24"),
    (WHEN, "Tomorrow!", "2026-11-24"),
    (WHEN, "today", "2026-11-23"),
    (WHEN, "tuesday", "2026-11-24"),
    (WHEN, "next tuesday", "2026-12-01"),
    (WHEN, "next Tue", "2026-12-01"),
    (WHEN, "friday", "2026-11-27"),
    (WHEN, "monday", "2026-11-30"),
    (WHEN, "in 2 weeks", "2026-12-07"),
    (WHEN, "in a month", "2026-12-23"),
    (WHEN, "3 days", "2026-11-26"),
    (WHEN, "next week", "2026-11-30"),
    (WHEN, "next month", "2026-12-01"),
    (WHEN, "end of month", "2026-11-30"),
    (WHEN, "EOQ", "2026-12-31"),
    (WHEN, "12/15", "2026-12-15"),
    (WHEN, "1/15", "2027-01-15"),
    (WHEN, "12/15/27", "2027-12-15"),
    (WHEN, "25/12", "2026-12-25"),
    (WHEN, "2026-12-15", "2026-12-15"),
    (WHEN, "Dec 15th", "2026-12-15"),
    (WHEN, "15 December", "2026-12-15"),
    (WHEN, "probably by 12/15 👍", "2026-12-15"),
    (WHEN, "tue or wed", Unreadable),
    (WHEN, "2/30", Unreadable),
    (WHEN, "soon", Unreadable),
    # free text keeps the words, trimmed to max_length
    (NOTE, "  budget   frozen  ", "budget frozen"),
    (NOTE, "done deal, they signed", "done deal, they sign"),
    # control words
    (YN, "skip", Skip),
    (YN, "SKIP this one", Skip),
    (WHEN, "idk", Skip),
    (RATING, "pass", Skip),
    (NOTE, "skip", Skip),
    (YN, "stop", Stop),
    (RATING, "Stop asking", Stop),
    (WHEN, "no more questions", Stop),
    (NOTE, "done", Stop),
    (YN, "not sure", Skip),
    (YN, "Done.", Stop),
    (SEATS, "no more than 5", 5),
    (NOTE, "stop by their office", "stop by their office"),
]


@pytest.mark.parametrize(("question", "text", "expected"), CASES)
def test_reply_table(question: Question, text: str, expected: object) -> None:
    """Each real-world reply parses to the expected value, skip, stop or re-ask."""
    result = parse_answer(question, text, now=NOW, tz=NY)
    if expected in (Skip, Stop, Unreadable):
        assert type(result) is expected, result
    else:
        assert result == Parsed(value=expected), result  # type: ignore[arg-type]


def test_table_is_large_enough() -> None:
    """The reply table covers at least 40 real-world replies."""
    assert len(CASES) >= 40


def test_dates_use_the_reps_zone() -> None:
    """At 02:00 UTC it is still yesterday in New York, so "tomorrow" is today's UTC date."""
    late = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)  # 21:00 Mon in New York
    assert parse_answer(WHEN, "tomorrow", now=late, tz=NY) == Parsed(value="2026-11-24")
    assert parse_answer(WHEN, "tomorrow", now=late, tz=dt.UTC) == Parsed(value="2026-11-25")


def test_month_end_arithmetic_clamps() -> None:
    """ "in a month" from 31 January lands on the last day of February."""
    assert parse_date("in a month", dt.date(2027, 1, 31)) == dt.date(2027, 2, 28)


def test_reask_names_the_options() -> None:
    """An unreadable choice re-asks with the numbered options."""
    result = parse_answer(RATING, "meh-ish?", now=NOW, tz=NY)
    assert isinstance(result, Unreadable)
    assert "1 Bad" in result.reask and "5 Great" in result.reask


def test_range_reask_names_the_range() -> None:
    """A number outside min/max re-asks with the allowed range."""
    result = parse_answer(SEATS, "0 seats", now=NOW, tz=NY)
    assert isinstance(result, Unreadable)
    assert "1 to 5000" in result.reask


def test_texts_are_gsm7_safe() -> None:
    """Every user-facing text is ASCII, so one SMS segment holds 160 characters."""
    for key, text in TEXTS.items():
        assert text.isascii(), key


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60))
def test_any_text_gets_exactly_one_result(text: str) -> None:
    """No reply, however odd, raises: each question type returns one of the four results."""
    for question in (YN, RATING, NEXT, SEATS, MONEY, WHEN, NOTE):
        result = parse_answer(question, text, now=NOW, tz=NY)
        assert isinstance(result, Parsed | Skip | Stop | Unreadable)

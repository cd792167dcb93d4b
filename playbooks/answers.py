"""Answer parsing: forgiving, but predictable enough to explain in one paragraph.

:func:`parse_answer` turns a rep's reply to one question into exactly one of
:class:`Parsed` (a value for the CRM), :class:`Skip`, :class:`Stop` or
:class:`Unreadable` (with the short re-ask to send). The rules, in order:

1. Normalise: lower case, ``👍 👌 ✅ 💯`` become "yes" and ``👎 ❌`` become "no",
   other emoji and punctuation are dropped, spaces collapse.
2. Control words (tables below): a whole reply "skip", "pass", "n/a", "idk",
   "not sure" skips the question; "stop", "done", "no more", "enough" ends the
   questionnaire. Only "skip ...", "pass ...", "idk ...", "stop ..." and "no more
   questions ..." also count as the first words of a longer reply, because "no more
   than 5" or "done deal" are answers. For free-text questions only whole replies count.
3. Then the question's type decides: choice (the option's number or its label, as
   the whole reply or as the only label among its words), yes/no (the first word;
   otherwise the only yes- or no-word in the reply; both or neither → unreadable),
   number (one number, with ``$``/``k``/``m``/thousand separators and any unit word),
   date (:func:`parse_date`), free text.

**"stop" here is not the SMS opt-out.** On SMS, Twilio treats a message that is
only the single word STOP, STOPALL, UNSUBSCRIBE, CANCEL, END or QUIT as an opt-out
("STOP PLEASE" is not one); toll-free carriers do the same for "stop" in lower case.
Delivery owns that: it records the opt-out in our suppression list and must not
forward an opt-out keyword to ``replies``. So the conversation agent only sees texts
that are not opt-out keywords: "stop" arrives here from Slack or the console, and on
SMS in longer forms such as "stop asking" or "no more questions", which is why the
stop table has several multi-word entries, and why texts tell reps to reply "done"
(the questionnaire loader refuses a text that invites a reply of STOP).

**Other languages.** Yes/no words of Spanish, French, German, Italian and Portuguese
are accepted ("sí", "oui", "ja", "nein", "não"), because reps do answer in their own
language and the words are unambiguous in a yes/no question. Numbers, dates and
labels are English (with US month/day order for "12/15"); a reply in another
language is re-asked rather than guessed at.

All user-facing texts (prompts, re-asks, confirmations) are in :data:`TEXTS`, and
they are plain ASCII so an SMS stays GSM-7 (one emoji would make it UCS-2).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict

from playbooks.questionnaire import (
    ChoiceQuestion,
    DateQuestion,
    NumberQuestion,
    Question,
    Scalar,
    TextQuestion,
    YesNoQuestion,
)

# --- every user-facing text ----------------------------------------------------------

TEXTS: dict[str, str] = {
    "intro": "{intro}",
    "choice": "{text} Reply {options}",
    "yes_no": "{text} Reply Y or N",
    "number": "{text} Reply a number{unit}",
    "date": "{text} Reply a date (e.g. 12/15, next tue, in 2 weeks)",
    "text": "{text}",
    "reask_choice": "Sorry, I didn't get that. Reply a number from 1 to {n}: {options}",
    "reask_yes_no": "Sorry, I didn't get that. Reply Y or N (or skip).",
    "reask_number": "Sorry, I need one number{unit}, like 12 or 12k (or skip).",
    "reask_number_range": "That's outside {low} to {high}{unit}. Reply a number in range (or skip).",
    "reask_number_integer": "Please reply a whole number{unit} (or skip).",
    "reask_date": "Sorry, I didn't get the date. Try 12/15, tomorrow, next tue or in 2 weeks.",
    "reask_text": "Reply a few words (or skip).",
    "gave_up": "Skipping that one.",
    "got": "Got {value}.",
    "got_on": "Got {value} for {subject}.",
    "noted_on": "Noted for {subject}.",
    "reminder": "Reminder: {prompt}",
    "done": "Thanks, saved {n} answer{s} on {subject}.",
    "done_none": "Thanks. Nothing saved on {subject}.",
    "stopped": "OK, stopped. Saved {n} answer{s} on {subject}.",
    "expired": "No answer, so I closed the questions on {subject}. Saved {n} answer{s}.",
}
"""Every text a rep can receive from a questionnaire, by key. ASCII only (GSM-7)."""


def say(key: str, **values: object) -> str:
    """The text ``key`` with its blanks filled in."""
    return TEXTS[key].format(**values)


# --- results -------------------------------------------------------------------------


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Parsed(_Result):
    """The reply answers the question; ``value`` is what the CRM field gets."""

    kind: Literal["parsed"] = "parsed"
    value: Scalar


class Skip(_Result):
    """Leave this question unanswered and go on."""

    kind: Literal["skip"] = "skip"


class Stop(_Result):
    """End the questionnaire now (keeping the answers given so far)."""

    kind: Literal["stop"] = "stop"


class Unreadable(_Result):
    """The reply cannot be read as an answer; send ``reask``."""

    kind: Literal["unreadable"] = "unreadable"
    reask: str


Result = Parsed | Skip | Stop | Unreadable

# --- tables --------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _phrases(text: str) -> frozenset[str]:
    return frozenset(text.split("|"))


def _index(groups: str, start: int) -> dict[str, int]:
    """ "mon monday|tue tuesday" → {"mon": start, "monday": start, "tue": start + 1, ...}"""
    return {w: i for i, names in enumerate(groups.split("|"), start) for w in names.split()}


YES = _words(
    "y yes yep yup yeah yea ya yah ok okay sure definitely absolutely correct true affirmative "
    "si sí oui ja jawohl sim claro certo"
)
NO = _words("n no nope nah nay never false negative non nein não nao nee")
YES_PHRASES = (
    "of course",
    "i think so",
    "for sure",
    "you bet",
    "no problem",
    "d'accord",
    "bien sur",
)
NO_PHRASES = ("not really", "not yet", "not at all", "i don't think so", "no way", "pas encore")
SKIP = _phrases("skip|pass|n/a|na|idk|dunno|don't know|dont know|no idea|not sure")
SKIP_LEADS = ("skip", "pass", "idk", "dunno", "no idea")
STOP = _phrases("stop|stop asking|stop questions|no more|no more questions|done|enough|that's all")
STOP_LEADS = ("stop", "no more questions")
"""Whole replies that skip / stop; ``*_LEADS`` also count as the first words of a reply
("skip this one"). "no more" or "done" lead too many real answers to count as leads."""
EMOJI_WORDS = {e: " yes " for e in "👍👌✅💯"} | {e: " no " for e in "👎❌"}
_SMALL = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
NUMBER_WORDS = (
    {w: i for i, w in enumerate(_SMALL)}
    | {"eleven": 11, "twelve": 12}
    | {"a dozen": 12, "twenty": 20, "fifty": 50, "hundred": 100, "a hundred": 100}
)
MULTIPLIERS = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mm": 1e6, "million": 1e6, "bn": 1e9}

_NUMBER = re.compile(
    r"(?<![\w.])(?P<cur>[$€£])?\s*"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?|\.\d+)"
    r"\s*(?P<mult>k|mm|m|bn|thousand|million)?(?![a-z])"
)


def normalise(text: str) -> str:
    """Lower case, emoji → yes/no words or nothing, punctuation dropped, spaces collapsed."""
    for emoji, word in EMOJI_WORDS.items():
        text = text.replace(emoji, word)
    kept = []
    for ch in text.casefold():
        cat = unicodedata.category(ch)
        if cat.startswith(("L", "N")) or ch in " '/$€£.,-":
            kept.append(ch)
        elif cat.startswith("Z") or ch in "!?;:()\n\t":
            kept.append(" ")
        # other symbols (emoji, modifiers, variation selectors) vanish
    words = "".join(kept).replace("’", "'").split()
    return " ".join(w.strip(".,-'") or w for w in words).strip()


def _starts_with(norm: str, phrases: tuple[str, ...]) -> bool:
    return any(norm == p or norm.startswith(p + " ") for p in phrases)


def control(text: str, *, free_text: bool = False) -> Skip | Stop | None:
    """Skip or Stop if ``text`` is a control reply (see the module docstring), else None."""
    norm = normalise(text)
    if norm in STOP or (not free_text and _starts_with(norm, STOP_LEADS)):
        return Stop()
    if norm in SKIP or (not free_text and _starts_with(norm, SKIP_LEADS)):
        return Skip()
    return None


# --- per type ------------------------------------------------------------------------


def options_text(q: ChoiceQuestion) -> str:
    return ", ".join(f"{i} {o.label}" for i, o in enumerate(q.options, 1))


def parse_choice(q: ChoiceQuestion, norm: str) -> Result:
    """The option's number ("2", "#2", "option 2") or its label, whole or the only one named."""
    reask = Unreadable(reask=say("reask_choice", n=len(q.options), options=options_text(q)))
    m = re.fullmatch(r"(?:option |#)?(\d+)(?: .*)?", norm)
    if m:
        n = int(m.group(1))
        return Parsed(value=q.options[n - 1].stored) if 1 <= n <= len(q.options) else reask
    labels = [normalise(o.label) for o in q.options]
    if norm in labels:
        return Parsed(value=q.options[labels.index(norm)].stored)
    padded = f" {norm} "
    named = [i for i, label in enumerate(labels) if f" {label} " in padded]
    if len(named) == 1:
        return Parsed(value=q.options[named[0]].stored)
    return reask


def parse_yes_no(norm: str) -> Result:
    """The first word if it is yes or no; else the only kind of yes/no word in the reply."""
    reask = Unreadable(reask=say("reask_yes_no"))
    if not norm:
        return reask
    if _starts_with(norm, YES_PHRASES):
        return Parsed(value=True)
    if _starts_with(norm, NO_PHRASES):
        return Parsed(value=False)
    words = norm.split()
    if words[0] in YES and not any(w in NO for w in words[1:3]):
        return Parsed(value=True)
    if words[0] in NO and not any(w in YES for w in words[1:3]):
        return Parsed(value=False)
    yes, no = any(w in YES for w in words), any(w in NO for w in words)
    if yes != no:
        return Parsed(value=yes)
    return reask


def _unit(q: NumberQuestion) -> str:
    return f" ({q.unit})" if q.unit else ""


def parse_number(q: NumberQuestion, norm: str) -> Result:
    """Exactly one number: "12k", "$12,000", "3 seats", "2.5", "2,5", "three"."""
    reask = Unreadable(reask=say("reask_number", unit=_unit(q)))
    for words, n in sorted(NUMBER_WORDS.items(), key=lambda kv: -len(kv[0])):
        norm = re.sub(rf"\b{words}\b", str(n), norm)
    found = list(_NUMBER.finditer(norm))
    if len(found) != 1:
        return reask
    m = found[0]
    raw = m.group("num")
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", raw):
        raw = raw.replace(",", "")
    else:
        raw = raw.replace(",", ".")  # "2,5": a decimal comma, not a thousands separator
    value = float(raw) * MULTIPLIERS.get(m.group("mult") or "", 1)
    if (q.min is not None and value < q.min) or (q.max is not None and value > q.max):
        low = "any" if q.min is None else f"{q.min:g}"
        high = "any" if q.max is None else f"{q.max:g}"
        return Unreadable(reask=say("reask_number_range", low=low, high=high, unit=_unit(q)))
    if q.integer:
        if value != int(value):
            return Unreadable(reask=say("reask_number_integer", unit=_unit(q)))
        return Parsed(value=int(value))
    return Parsed(value=int(value) if value == int(value) and abs(value) < 2**53 else value)


def parse_answer(question: Question, text: str, *, now: dt.datetime, tz: dt.tzinfo) -> Result:
    """Read ``text`` as an answer to ``question``; ``now`` and the rep's ``tz`` anchor dates."""
    is_text = isinstance(question, TextQuestion)
    ctl = control(text, free_text=is_text)
    if ctl is not None:
        return ctl
    norm = normalise(text)
    if isinstance(question, ChoiceQuestion):
        return parse_choice(question, norm)
    if isinstance(question, YesNoQuestion):
        return parse_yes_no(norm)
    if isinstance(question, NumberQuestion):
        return parse_number(question, norm)
    if isinstance(question, DateQuestion):
        day = parse_date(norm, now.astimezone(tz).date())
        return Parsed(value=day.isoformat()) if day else Unreadable(reask=say("reask_date"))
    cleaned = " ".join(text.split())[: question.max_length]
    return Parsed(value=cleaned) if cleaned else Unreadable(reask=say("reask_text"))


def _shown(question: Question, value: Scalar) -> str | None:
    """How a date or number answer is read back (a parse could surprise); else None."""
    if isinstance(question, DateQuestion) and isinstance(value, str):
        day = dt.date.fromisoformat(value)
        return f"{day:%a %b} {day.day}"
    if isinstance(question, NumberQuestion):
        return f"{value:,}" + (f" {question.unit}" if question.unit else "")
    return None


def echo(question: Question, value: Scalar) -> str:
    """ "Got Tue Dec 1. " for dates and numbers, where a parse could surprise; else ""."""
    shown = _shown(question, value)
    return say("got", value=shown) + " " if shown is not None else ""


def acknowledge(question: Question, value: Scalar, subject: str) -> str:
    """ "Got Tue Dec 1 for Acme. " or "Noted for Acme. ": an answer's acknowledgement names
    the lead it is for (it goes before the next question)."""
    shown = _shown(question, value)
    if shown is not None:
        return say("got_on", value=shown, subject=subject) + " "
    return say("noted_on", subject=subject) + " "


def prompt(question: Question) -> str:
    """The text that asks ``question``."""
    if isinstance(question, ChoiceQuestion):
        return say("choice", text=question.text, options=options_text(question))
    if isinstance(question, NumberQuestion):
        return say(
            "number", text=question.text, unit=f" of {question.unit}" if question.unit else ""
        )
    return say(question.type, text=question.text)


# --- dates ---------------------------------------------------------------------------

WEEKDAYS = _index(
    "mon monday|tue tues tuesday|wed weds wednesday|thu thur thurs thursday|"
    "fri friday|sat saturday|sun sunday",
    0,
)
MONTHS = _index(
    "jan january|feb february|mar march|apr april|may|jun june|jul july|aug august|"
    "sep sept september|oct october|nov november|dec december",
    1,
)
_WD = "|".join(sorted(WEEKDAYS, key=len, reverse=True))
_MON = "|".join(sorted(MONTHS, key=len, reverse=True))
_ORD = r"(?:st|nd|rd|th)?"
_COUNT = r"(\d+|a|an|one|two|three|four|five|six|a couple of|couple of)"
_COUNTS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


def _add_months(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


def _end_of_month(day: dt.date) -> dt.date:
    return _add_months(day.replace(day=1), 1) - dt.timedelta(days=1)


def _dated(year: int | None, month: int, day: int, today: dt.date) -> dt.date | None:
    """A calendar date; with no year, the next one on or after today."""
    if year is not None and year < 100:
        year += 2000
    try:
        found = dt.date(year or today.year, month, day)
        if year is None and found < today:
            found = found.replace(year=today.year + 1)
    except ValueError:
        return None
    return found


def _candidates(norm: str, today: dt.date) -> list[dt.date | None]:
    out: list[dt.date | None] = []
    if re.search(r"\bday after (tomorrow|tmrw)\b", norm):
        return [today + dt.timedelta(days=2)]
    if re.search(r"\b(today|tonight|tod|eod)\b", norm):
        out.append(today)
    if re.search(r"\b(tomorrow|tmrw|tmr|tomorow|tomm?orrow)\b", norm):
        out.append(today + dt.timedelta(days=1))
    for m in re.finditer(rf"\b(next )?({_WD})\b", norm):
        if m.group(1):  # that weekday in next week (weeks start on Monday)
            ahead = 7 - today.weekday() + WEEKDAYS[m.group(2)]
        else:  # the first one after today
            ahead = (WEEKDAYS[m.group(2)] - today.weekday() - 1) % 7 + 1
        out.append(today + dt.timedelta(days=ahead))
    if re.search(r"\bnext week\b", norm):
        out.append(today + dt.timedelta(days=7 - today.weekday()))
    if re.search(r"\bnext month\b", norm):
        out.append(_add_months(today.replace(day=1), 1))
    for m in re.finditer(rf"\b(?:in )?{_COUNT} (day|week|month|year)s?\b", norm):
        raw = m.group(1)
        n = int(raw) if raw.isdigit() else _COUNTS.get(raw, 2)
        unit = m.group(2)
        if unit == "day":
            out.append(today + dt.timedelta(days=n))
        elif unit == "week":
            out.append(today + dt.timedelta(weeks=n))
        else:
            out.append(_add_months(today, n * (12 if unit == "year" else 1)))
    if re.search(r"\b(end of (the )?month|eom)\b", norm):
        out.append(_end_of_month(today))
    if re.search(r"\b(end of (the )?quarter|eoq)\b", norm):
        q_end = dt.date(today.year, (today.month - 1) // 3 * 3 + 3, 1)
        out.append(_end_of_month(q_end))
    if re.search(r"\b(end of (the )?year|eoy)\b", norm):
        out.append(dt.date(today.year, 12, 31))
    for m in re.finditer(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b", norm):
        out.append(_dated(int(m.group(1)), int(m.group(2)), int(m.group(3)), today))
    for m in re.finditer(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?\b", norm):
        a, b = int(m.group(1)), int(m.group(2))
        month, day = (b, a) if a > 12 >= b else (a, b)  # US order unless impossible
        out.append(_dated(int(m.group(3)) if m.group(3) else None, month, day, today))
    for m in re.finditer(rf"\b({_MON}) (\d{{1,2}}){_ORD}(?: (\d{{4}}))?\b", norm):
        year = int(m.group(3)) if m.group(3) else None
        out.append(_dated(year, MONTHS[m.group(1)], int(m.group(2)), today))
    for m in re.finditer(rf"\b(\d{{1,2}}){_ORD} (?:of )?({_MON})(?: (\d{{4}}))?\b", norm):
        year = int(m.group(3)) if m.group(3) else None
        out.append(_dated(year, MONTHS[m.group(2)], int(m.group(1)), today))
    return out


def parse_date(norm: str, today: dt.date) -> dt.date | None:
    """The one date a normalised reply names, relative to ``today`` in the rep's zone.

    "tuesday" and "this tuesday" mean the first Tuesday after today (never today);
    "next tuesday" means the Tuesday of next week (weeks start on Monday), so on a
    Monday it is eight days away, not tomorrow. The conversation echoes the date it
    understood, so a rep can correct it. "next week" is next Monday, "next month" the 1st; "12/15" is month/day (US), and a date
    with no year is the next one on or after today. A reply naming two different
    dates, an impossible date or none at all gives None.
    """
    found = set(_candidates(norm, today))
    if len(found) != 1 or None in found:
        return None
    return found.pop()

"""Which message a rep's reply answers — pure, so it is tested with plain data.

A reply is read against what was *delivered* to that rep on that channel, newest first
(:class:`Prompt`, from the outbox: only rows the provider accepted). The rules:

1. **A question is answered only while it is the latest prompt.** If the newest
   delivered prompt is a questionnaire question (or its reminder), the reply is its
   answer, whatever it says. A question that was suppressed or not yet sent is not
   open; a nudge delivered after the question takes the floor (the question's reminder
   asks it again later).
2. **Nudge codes are bound to a nudge.** A nudge that offers codes carries a letter of
   its own ("Reply 1B to log a call"; :mod:`nudge.codes`), so ``1B`` answers that
   message whatever came after it. A bare ``1`` log a call, ``2`` snooze, ``3`` not
   relevant applies to the newest nudge when that is unambiguous: no nudge about another
   lead was delivered within :data:`AMBIGUOUS_WITHIN` before it, and it is not a digest
   (one message about several leads). Otherwise Nudge asks a one-line "which one?",
   naming each lead with its message's letter (``1A``, ``1B``); ``1 Acme`` (a code and
   the company) always works.
3. **Notes go to the lead the rep is talking about.** Free text that names the company
   of a recently nudged lead goes to that lead; otherwise to the lead of the newest
   prompt if it is recent (:data:`NOTE_WITHIN`); otherwise Nudge asks which lead.

Every reading names its lead, so every acknowledgement can.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from dataclasses import dataclass, field
from typing import Literal

ACTIONS = {"1": "log_call", "2": "snooze", "3": "not_relevant"}
"""What a nudge code means."""
SNOOZE = dt.timedelta(days=1)
"""How long "2" snoozes nudges about the lead for that rep."""
AMBIGUOUS_WITHIN = dt.timedelta(minutes=30)
"""Nudges about different leads delivered this close together make a bare code ambiguous."""
NOTE_WITHIN = dt.timedelta(hours=24)
"""A note without a company goes to the newest prompt's lead only if it is this recent."""
CODE = re.compile(r"^\s*([123])\s*[.!]?\s*(?:([A-Za-z])\b|(\S.*?))?\s*[.!]?\s*$")

ACK = {
    "log_call": "Logged a call with {company}.",
    "snooze": "Snoozed {company} for a day.",
    "not_relevant": "Noted: {company} is not relevant.",
    "note": "Noted on {company}.",
}
WHICH = "Which one? {options}"
"""Asked when a code could mean more than one lead."""
WHICH_OPTION = "{code}{letter} {company}"
WHICH_NOTE = (
    "Which lead is that note about? Send it again starting with the company, "
    "e.g. 'Acme: call back Monday'."
)
NOTHING_TO_ANSWER = "Nothing to answer right now. Reply HELP for help."


@dataclass(frozen=True)
class Prompt:
    """A message delivered to the rep that a reply may answer (newest first in lists).

    A digest (one message about several leads) is one prompt per lead it names. The rep's
    other leads come last as ``known``: never answered by a code alone, but a note or a
    code that names their company finds them."""

    message_id: str
    kind: Literal["question", "closing", "nudge", "digest", "which", "known"]
    sent_at: dt.datetime
    lead_id: str | None = None
    company: str | None = None
    session_id: str | None = None
    code: str | None = None
    """The letter its reply codes carry ("Reply 1B"; ``nudge.codes``), if any."""


@dataclass(frozen=True)
class Answer:
    """The reply answers the question asked by ``message_id`` of this session (the agent
    checks it is still the session's current question: ``conversation.is_current``)."""

    session_id: str
    message_id: str = ""


@dataclass(frozen=True)
class Act:
    """The reply is a nudge code for ``lead_id``."""

    action: str
    lead_id: str
    company: str
    nudge_id: str


@dataclass(frozen=True)
class Which:
    """Ambiguous: ask which lead, offering these ``(letter, lead_id, company)``."""

    code: str
    options: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        if not self.options:
            return WHICH.format(options="reply the code and the company, e.g. '1 Acme'.")
        listed = ", ".join(
            WHICH_OPTION.format(code=self.code, letter=letter, company=company)
            for letter, _, company in self.options
        )
        return WHICH.format(options=f"Reply {listed}.")


@dataclass(frozen=True)
class Note:
    """Free text about ``lead_id`` (``None``: Nudge asks which lead)."""

    lead_id: str | None
    company: str | None
    text: str


Reading = Answer | Act | Which | Note


def read_reply(text: str, prompts: list[Prompt], now: dt.datetime) -> Reading:
    """What ``text`` answers, given the prompts delivered to the rep on its channel."""
    latest = prompts[0] if prompts else None
    if latest is not None and latest.kind == "question" and latest.session_id:
        return Answer(latest.session_id, latest.message_id)
    code = CODE.match(text)
    if code:
        return _code(code.group(1), code.group(2), code.group(3), prompts)
    return _note(text, prompts, now)


def candidates(prompts: list[Prompt]) -> list[Prompt]:
    """The nudges a bare code could mean: the newest, and those about other leads
    delivered within :data:`AMBIGUOUS_WITHIN` before it (one per lead, newest first)."""
    nudges = [p for p in prompts if p.kind in ("nudge", "digest")]
    if not nudges:
        return []
    newest = nudges[0]
    seen: dict[str, Prompt] = {}
    for p in nudges:
        if newest.sent_at - p.sent_at > AMBIGUOUS_WITHIN:
            break
        if p.lead_id and p.lead_id not in seen:
            seen[p.lead_id] = p
    return list(seen.values())


def _code(digit: str, letter: str | None, rest: str | None, prompts: list[Prompt]) -> Reading:
    action = ACTIONS[digit]
    if letter is not None:  # "1B": the newest message that letter names
        wanted = letter.upper()
        for i, p in enumerate(prompts):
            if p.kind == "which":
                options = _options(candidates(prompts[i + 1 :]), prompts)
                chosen = next((o for o in options if o[0] == wanted), None)
                if chosen is not None:
                    return Act(action, chosen[1], chosen[2], _nudge_for(chosen[1], prompts))
            elif p.kind == "nudge" and p.code == wanted and p.lead_id:
                return Act(action, p.lead_id, p.company or p.lead_id, p.message_id)
    named = rest or letter
    if named:
        found = _named(named, prompts)
        if found is not None:
            nudge_id = "" if found.kind == "known" else found.message_id
            return Act(action, found.lead_id or "", found.company or "", nudge_id)
        return Which(digit, _options(candidates(prompts), prompts))
    pool = candidates(prompts[1:] if prompts and prompts[0].kind == "which" else prompts)
    if len(pool) == 1 and pool[0].lead_id:
        p = pool[0]
        return Act(action, p.lead_id or "", p.company or p.lead_id or "", p.message_id)
    return Which(digit, _options(pool, prompts))


def _options(pool: list[Prompt], prompts: list[Prompt]) -> list[tuple[str, str, str]]:
    """``(letter, lead_id, company)`` per candidate: a message's own code where it has
    one, else a letter no message among ``prompts`` carries."""
    taken = {p.code for p in prompts if p.code}
    spare = (c for c in string.ascii_uppercase if c not in taken)
    out: list[tuple[str, str, str]] = []
    for p in pool:
        letter = p.code if p.code and p.code not in {o[0] for o in out} else next(spare, None)
        if letter is None:
            break
        out.append((letter, p.lead_id or "", p.company or p.lead_id or ""))
    return out


def _nudge_for(lead_id: str, prompts: list[Prompt]) -> str:
    return next((p.message_id for p in prompts if p.lead_id == lead_id), "")


def _named(words: str, prompts: list[Prompt]) -> Prompt | None:
    """The newest prompt whose company ``words`` names (or starts with), if exactly one lead."""
    wanted = words.strip().lower()
    found: dict[str, Prompt] = {}
    for p in prompts:
        company = (p.company or "").lower()
        if p.lead_id and company and (wanted.startswith(company) or company.startswith(wanted)):
            found.setdefault(p.lead_id, p)
    return next(iter(found.values())) if len(found) == 1 else None


def _note(text: str, prompts: list[Prompt], now: dt.datetime) -> Note:
    lower = text.lower()
    named: dict[str, Prompt] = {}
    for p in prompts:
        company = (p.company or "").lower()
        if p.lead_id and company and re.search(rf"\b{re.escape(company)}\b", lower):
            named.setdefault(p.lead_id, p)
    if len(named) == 1:
        p = next(iter(named.values()))
        return Note(p.lead_id, p.company, text)
    if named:
        return Note(None, None, text)
    latest = next((p for p in prompts if p.kind not in ("which", "known") and p.lead_id), None)
    if latest is not None and now - latest.sent_at <= NOTE_WITHIN:
        return Note(latest.lead_id, latest.company, text)
    return Note(None, None, text)

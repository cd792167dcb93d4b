"""Reply codes bound to one message: "Reply 1B to log a call".

A nudge that offers reply codes ("Reply 1 to log a call, 2 to snooze") gets a letter of
its own when it is queued for its rep — the next after the rep's previous coded nudge,
A to Z and round again — and its offer is written with it: "Reply 1B to log a call, 2B to
snooze". "1B" then answers that message whatever came after it; a bare "1" still means the
newest nudge when that is unambiguous (``playbooks.replies``). The letter is kept on the
command (``NudgeCommand.code``), so the reply matcher reads it from the outbox.

Defined here, on the ground floor, because delivery writes the letters and the reply
matcher reads them.
"""

from __future__ import annotations

import re
import string

LETTERS = string.ascii_uppercase
_OFFER = re.compile(r"\bReply\b[^.!?\n]*", re.IGNORECASE)
"""A "Reply ..." clause, up to the end of its sentence."""
_CODE = re.compile(r"\b([123])(?=\s+to\b)")
"""A code offered in it: "1 to log a call"."""


def offers_codes(text: str) -> bool:
    """Does ``text`` offer reply codes ("Reply 1 to ...")?"""
    return any(_CODE.search(m.group(0)) for m in _OFFER.finditer(text))


def with_code(text: str, letter: str) -> str:
    """``text`` with every offered code bound to ``letter``: "Reply 1 to" → "Reply 1B to"."""
    return _OFFER.sub(lambda m: _CODE.sub(rf"\g<1>{letter}", m.group(0)), text)


def next_code(recent: list[str]) -> str:
    """The letter for a rep's next coded nudge, given their recent letters (newest first)."""
    if not recent or recent[0] not in LETTERS:
        return LETTERS[0]
    return LETTERS[(LETTERS.index(recent[0]) + 1) % len(LETTERS)]

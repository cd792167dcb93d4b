"""Reply codes bound to one message (nudge.codes): which texts offer them, how the letter
is written in, and which letter comes next."""

from __future__ import annotations

from nudge.codes import next_code, offers_codes, with_code


def test_the_offer_gets_the_letter_and_nothing_else_does() -> None:
    """Every code of a "Reply ..." clause carries the letter; other digits are left alone."""
    text = "Acme: 3 visits to pricing in 1 hour. Reply 1 to log a call, 2 to snooze."
    assert offers_codes(text)
    assert with_code(text, "B") == (
        "Acme: 3 visits to pricing in 1 hour. Reply 1B to log a call, 2B to snooze."
    )
    assert not offers_codes("Acme is back on pricing; next step none")
    assert not offers_codes("Reply 5 to win")  # not a nudge code


def test_letters_go_round() -> None:
    """A, then the letter after the rep's newest, Z back to A."""
    assert next_code([]) == "A"
    assert next_code(["C", "B"]) == "D"
    assert next_code(["Z"]) == "A"

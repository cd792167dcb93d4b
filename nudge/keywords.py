"""The SMS keywords carriers and Twilio act on — one definition for the inbound webhook
(``notifiers.inbound``: opt-out, opt-in, help) and the questionnaire check that refuses a
text inviting a rep to send one (``playbooks.questionnaire``)."""

from __future__ import annotations

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
"""A message that is only one of these words opts the number out of texts."""
OPT_IN = frozenset({"START", "UNSTOP", "YES"})
HELP = frozenset({"HELP", "INFO"})

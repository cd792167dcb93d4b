"""Every text a person reads from the notifiers, in one place.

Why one module: legal wording (STOP/HELP answers) gets reviewed in one file,
and a future translation has one file to copy. Errors name the setting to change.
"""

from __future__ import annotations

HELP = (
    "Nudge: sales alerts from your team's CRM. Reply 1 to log a call, 2 to snooze, "
    "3 if not relevant. Reply STOP to stop texts, START to resume. Msg&data rates may apply."
)
STOPPED = "Nudge: you will get no more texts. Reply START to resume."
STARTED = "Nudge: texts are back on. Reply HELP for help, STOP to stop."

BUTTONS = {
    "log_call": "Log a call",
    "snooze": "Snooze",
    "not_relevant": "Not relevant",
}
"""Slack buttons under every nudge: action id suffix → label."""

WHY = "Why"
ANSWER_BUTTON = "Answer"
ANSWER_TITLE = "Your answer"
ANSWER_SUBMIT = "Send"
CLICK_ACK = "Got it: {label}."
"""Replaces the buttons once one is clicked, so a second click cannot happen by mistake."""

NO_TWILIO_SENDER = (
    "Twilio needs a sender: set TWILIO_FROM_NUMBER (E.164, e.g. +14155550123) "
    "or TWILIO_MESSAGING_SERVICE_SID (MG...)."
)
BAD_FROM_NUMBER = (
    "TWILIO_FROM_NUMBER={value!r} is not a valid phone number; use E.164, e.g. +14155550123."
)
MISSING = "NUDGE_NOTIFIER={notifier} needs {names} to be set."
NO_PHONE = "rep {rep_id} has no valid phone number"
NO_SLACK_ID = "rep {rep_id} has no Slack user id"

"""What the CRM writer tests feed it: ``crm.updates`` messages as the worker writes them,
and a clock the test moves."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any


def answer_update(lead: str, field: str, value: Any, question: str = "q1") -> bytes:
    return json.dumps(
        {
            "lead_id": lead,
            "field": field,
            "old_value": None,
            "new_value": value,
            "source": "answer",
            "source_questionnaire": "post-meeting",
            "session_id": "s1",
            "question_id": question,
            "rep_id": "rep-1",
            "answered_at": "2026-03-02T17:00:00+00:00",
        }
    ).encode()


def call_update(lead: str, event_id: str = "twilio-call:CA1") -> bytes:
    return json.dumps(
        {
            "kind": "activity",
            "lead_id": lead,
            "activity": {
                "type": "call.ended",
                "event_id": event_id,
                "occurred_at": "2026-03-02T17:05:00+00:00",
                "source": "twilio-voice",
                "phone": "+14155550177",
                "duration_s": 312,
                "direction": "outbound",
                "outcome": "completed",
            },
        }
    ).encode()


class Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at

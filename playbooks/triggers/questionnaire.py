"""``questionnaire.answered``: the rep finished a questionnaire about the lead."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field

from nudge.signals import LeadSignal
from playbooks import fields as f
from playbooks.kinds import register
from playbooks.triggers.base import Match, TriggerKind


@register(
    "trigger",
    "questionnaire.answered",
    """
    trigger: {type: questionnaire.answered, questionnaire: post-meeting}
    """,
)
class QuestionnaireAnswered(TriggerKind):
    """Fires when the rep finishes questionnaire ``questionnaire`` (by id)."""

    type: Literal["questionnaire.answered"]
    questionnaire: str = Field(min_length=1)

    def fires(self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime) -> Match | None:
        # the conversation agent records answers as lead.updated from this source
        source = f"{f.QUESTIONNAIRE_SOURCE_PREFIX}{self.questionnaire}"
        if (
            signal.event_type == f.QUESTIONNAIRE_EVENT
            and signal.event.get("questionnaire") == self.questionnaire
        ) or (signal.event_type == "lead.updated" and signal.event.get("source") == source):
            return {"event.questionnaire": self.questionnaire}
        return None

    def may_fire(self, signal: LeadSignal) -> bool:
        return signal.event_type in (f.QUESTIONNAIRE_EVENT, "lead.updated")

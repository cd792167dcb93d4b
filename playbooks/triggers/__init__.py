"""Triggers: what makes a rule fire. One module per kind, joined here into one union.

The kinds register themselves in :mod:`playbooks.kinds` when imported below;
:func:`~playbooks.kinds.arrange` sets the order of the reference page and of hints.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from nudge.signals import LeadSignal
from playbooks import fields as f
from playbooks import kinds
from playbooks.triggers.base import Match, TriggerKind
from playbooks.triggers.date import DateTrigger
from playbooks.triggers.deal_stage import DealStageChanged
from playbooks.triggers.event import EventTrigger
from playbooks.triggers.inactivity import Inactivity
from playbooks.triggers.questionnaire import QuestionnaireAnswered
from playbooks.triggers.schedule import ScheduleTrigger
from playbooks.triggers.score_crossed import ScoreCrossedAbove, ScoreCrossedBelow
from playbooks.triggers.score_jumped import ScoreJumped

kinds.arrange(
    "trigger",
    (
        "event",
        "score.crossed_above",
        "score.crossed_below",
        "score.jumped",
        "deal.stage_changed",
        "questionnaire.answered",
        "date",
        "inactivity",
        "schedule",
    ),
)

if TYPE_CHECKING:
    Trigger = TriggerKind
else:
    Trigger = kinds.union("trigger")

__all__ = [
    "DateTrigger",
    "DealStageChanged",
    "EventTrigger",
    "Inactivity",
    "Match",
    "QuestionnaireAnswered",
    "ScheduleTrigger",
    "ScoreCrossedAbove",
    "ScoreCrossedBelow",
    "ScoreJumped",
    "Trigger",
    "TriggerKind",
    "fires",
]


def fires(
    trigger: TriggerKind, signal: LeadSignal, data: dict[str, Any], now: dt.datetime
) -> Match | None:
    """The matched values if ``signal`` fires a signal-driven trigger, else ``None``."""
    if signal.event_type == f.TIMER_EVENT or trigger.timed:
        return None
    return trigger.fires(signal, data, now)

"""``score.crossed_above`` / ``score.crossed_below``: the score passes a line."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal

from pydantic import Field

from nudge.signals import LeadSignal
from playbooks.kinds import register
from playbooks.triggers.base import Match, TriggerKind


@register(
    "trigger",
    "score.crossed_above",
    """
    trigger: {type: score.crossed_above, value: 0.7}
    """,
)
class ScoreCrossedAbove(TriggerKind):
    """Fires when a lead's score goes from below ``value`` to at or above it."""

    type: Literal["score.crossed_above"]
    value: float = Field(gt=0, le=1)
    score_based: ClassVar[bool] = True

    def fires(self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime) -> Match | None:
        score, prev = signal.score.value, signal.score.previous
        if score >= self.value and (prev is None or prev < self.value):
            return {"score.value": score, "score.previous": prev, "threshold": self.value}
        return None


@register(
    "trigger",
    "score.crossed_below",
    """
    trigger: {type: score.crossed_below, value: 0.4}
    """,
)
class ScoreCrossedBelow(TriggerKind):
    """Fires when a lead's score goes from at or above ``value`` to below it."""

    type: Literal["score.crossed_below"]
    value: float = Field(gt=0, le=1)
    score_based: ClassVar[bool] = True

    def fires(self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime) -> Match | None:
        score, prev = signal.score.value, signal.score.previous
        if score < self.value and prev is not None and prev >= self.value:
            return {"score.value": score, "score.previous": prev, "threshold": self.value}
        return None

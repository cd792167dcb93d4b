"""``score.jumped``: the score rose fast."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal

from pydantic import Field

from nudge.signals import LeadSignal
from playbooks.kinds import register
from playbooks.triggers.base import Match, TriggerKind
from playbooks.types import Duration, human_duration


@register(
    "trigger",
    "score.jumped",
    """
    trigger: {type: score.jumped, by: 0.3, within: 24h}
    """,
)
class ScoreJumped(TriggerKind):
    """Fires when the score rose by at least ``by`` over its lowest point in ``within``."""

    type: Literal["score.jumped"]
    by: float = Field(gt=0, le=1)
    within: Duration = dt.timedelta(hours=24)
    score_based: ClassVar[bool] = True

    def fires(self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime) -> Match | None:
        score, prev = signal.score.value, signal.score.previous
        since = signal.at - self.within
        window = [p.value for p in signal.history if since <= p.at < signal.at]
        low = min(window, default=prev if prev is not None else score)
        was = prev if prev is not None else score
        if score - low >= self.by and was - low < self.by:
            return {"score.value": score, "score.low": low, "within": human_duration(self.within)}
        return None

"""``score.jumped``: the score rose fast."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal

from pydantic import Field

from nudge.signals import LeadSignal
from playbooks.kinds import register
from playbooks.triggers.base import Match, TriggerKind
from playbooks.types import Duration, ScoreValue, human_duration


@register(
    "trigger",
    "score.jumped",
    """
    trigger: {type: score.jumped, by: 30%, within: 24h}
    """,
)
class ScoreJumped(TriggerKind):
    """Fires when the score rose by at least ``by`` over its lowest point in ``within``.

    A lead's first score is not a starting point (a new lead would "jump" from 0 on its
    first real event) unless ``from_first: true``.
    """

    type: Literal["score.jumped"]
    by: ScoreValue = Field(gt=0, le=1)
    within: Duration = dt.timedelta(hours=24)
    from_first: bool = False
    score_based: ClassVar[bool] = True
    score_fields: ClassVar[tuple[str, ...]] = ("by",)

    def fires(self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime) -> Match | None:
        score, prev = signal.score.value, signal.score.previous
        since = signal.at - self.within
        first = None if self.from_first else signal.first_scored_at
        if first is not None and prev is None:
            return None
        window = [
            p.value
            for p in signal.history
            if since <= p.at < signal.at and (first is None or p.at > first)
        ]
        if first is not None and not window:
            return None
        low = min(window, default=prev if prev is not None else score)
        was = prev if prev is not None else score
        if score - low >= self.by and was - low < self.by:
            return {"score.value": score, "score.low": low, "within": human_duration(self.within)}
        return None

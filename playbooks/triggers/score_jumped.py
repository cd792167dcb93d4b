"""``score.jumped``: the score rose fast."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from nudge.signals import LeadSignal
from playbooks.kinds import register
from playbooks.triggers.base import Match, TriggerKind
from playbooks.triggers.scores import CONVERSION, score_key, target_of, watched
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
    first real event) unless ``from_first: true``. ``score`` picks which of the lead's
    scores: ``conversion`` (default), ``churn`` or ``cross_sell.<product>``.
    """

    type: Literal["score.jumped"]
    by: ScoreValue = Field(gt=0, le=1)
    within: Duration = dt.timedelta(hours=24)
    from_first: bool = False
    score: str = CONVERSION
    """Which score: ``conversion``, ``churn`` or ``cross_sell.<product>``."""
    score_based: ClassVar[bool] = True
    score_fields: ClassVar[tuple[str, ...]] = ("by",)

    @field_validator("score")
    @classmethod
    def _known_score(cls, value: str) -> str:
        return target_of(value)

    def fires(self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime) -> Match | None:
        seen = watched(signal, self.score)
        if seen is None:
            return None
        score, prev = seen.score.value, seen.score.previous
        since = signal.at - self.within
        first = None if self.from_first else seen.first_scored_at
        if first is not None and prev is None:
            return None
        window = [
            p.value
            for p in seen.history
            if since <= p.at < signal.at and (first is None or p.at > first)
        ]
        if first is not None and not window:
            return None
        low = min(window, default=prev if prev is not None else score)
        was = prev if prev is not None else score
        if score - low >= self.by and was - low < self.by:
            key = score_key(self.score)
            return {f"{key}.value": score, f"{key}.low": low, "within": human_duration(self.within)}
        return None

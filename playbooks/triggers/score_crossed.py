"""``score.crossed_above`` / ``score.crossed_below``: the score passes a line.

A crossing re-arms only after the score has moved back past the line by ``margin``
(default 5 points): a score hovering around 70 % fires once, not on every wobble.
Re-arming is read from the lead's score history (the last 7 days), so the worker and
``simulate`` decide the same way with no extra state.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from nudge.signals import LeadSignal, ScorePoint
from playbooks.kinds import register
from playbooks.triggers.base import Match, TriggerKind
from playbooks.triggers.scores import CONVERSION, Watched, score_key, target_of, watched
from playbooks.types import ScoreValue, pct

DEFAULT_MARGIN = 0.05


def earlier_points(seen: Watched) -> list[ScorePoint]:
    """The score's history before this signal's own score."""
    history = seen.history
    if history and history[-1].at == seen.score.scored_at:
        return history[:-1]
    return list(history)


class Crossing(TriggerKind):
    """A line ``value`` the score crosses upward (``up``) or downward, once per crossing."""

    value: ScoreValue = Field(gt=0, le=1)
    margin: ScoreValue = Field(default=DEFAULT_MARGIN, ge=0, le=1)
    score: str = CONVERSION
    """Which score: ``conversion``, ``churn`` or ``cross_sell.<product>``."""
    score_based: ClassVar[bool] = True
    score_fields: ClassVar[tuple[str, ...]] = ("value", "margin")
    up: ClassVar[bool] = True

    def beyond(self, score: float) -> bool:
        """On the firing side of the line (at or above it going up, below it going down)."""
        return score >= self.value if self.up else score < self.value

    def rearmed(self, score: float) -> bool:
        """Far enough back on the other side for the next crossing to count."""
        if self.up:
            return score < self.value - self.margin
        return score >= self.value + self.margin

    @field_validator("score")
    @classmethod
    def _known_score(cls, value: str) -> str:
        return target_of(value)

    def crossed(self, seen: Watched | None) -> bool:
        if seen is None:
            return False
        value, prev = seen.score.value, seen.score.previous
        if self.up:
            return self.beyond(value) and (prev is None or not self.beyond(prev))
        return self.beyond(value) and prev is not None and not self.beyond(prev)

    def armed(self, seen: Watched) -> bool:
        """Has the score been back past the margin since it was last beyond the line?"""
        points = earlier_points(seen)
        last = max((i for i, p in enumerate(points) if self.beyond(p.value)), default=None)
        return last is None or any(self.rearmed(p.value) for p in points[last + 1 :])

    def fires(self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime) -> Match | None:
        seen = watched(signal, self.score)
        if seen is None or not self.crossed(seen) or not self.armed(seen):
            return None
        key = score_key(self.score)
        return {
            f"{key}.value": seen.score.value,
            f"{key}.previous": seen.score.previous,
            "threshold": self.value,
        }

    def may_fire(self, signal: LeadSignal) -> bool:
        return self.crossed(watched(signal, self.score))

    def why_not(self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime) -> str:
        way, back = ("crossed", "below") if self.up else ("fell below", "at or above")
        line = self.value - self.margin if self.up else self.value + self.margin
        name = "score" if self.score == CONVERSION else score_key(self.score)
        return (
            f"{name} {way} {pct(self.value)} again but has not been {back} {pct(line)} "
            f"since the last crossing (margin {pct(self.margin)})"
        )


@register(
    "trigger",
    "score.crossed_above",
    """
    trigger: {type: score.crossed_above, score: churn, value: 60%}
    """,
)
class ScoreCrossedAbove(Crossing):
    """Fires when a lead's score goes from below ``value`` to at or above it (``70%`` or
    ``0.7``), once per crossing: it re-arms when the score has been below ``value`` minus
    ``margin`` (default 5%). ``score`` picks which of the lead's scores: ``conversion``
    (default), ``churn`` or ``cross_sell.<product>`` (a lead without that score never fires).
    """

    type: Literal["score.crossed_above"]


@register(
    "trigger",
    "score.crossed_below",
    """
    trigger: {type: score.crossed_below, value: 40%}
    """,
)
class ScoreCrossedBelow(Crossing):
    """Fires when a lead's score goes from at or above ``value`` to below it, once per
    crossing: it re-arms when the score has been at or above ``value`` plus ``margin``.
    ``score`` picks the score as for ``score.crossed_above``.
    """

    type: Literal["score.crossed_below"]
    up: ClassVar[bool] = False

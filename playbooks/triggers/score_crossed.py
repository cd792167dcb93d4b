"""``score.crossed_above`` / ``score.crossed_below``: the score passes a line.

A crossing re-arms only after the score has moved back past the line by ``margin``
(default 5 points): a score hovering around 70 % fires once, not on every wobble.
Re-arming is read from the lead's score history (the last 7 days), so the worker and
``simulate`` decide the same way with no extra state.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal

from pydantic import Field

from nudge.signals import LeadSignal, ScorePoint
from playbooks.kinds import register
from playbooks.triggers.base import Match, TriggerKind
from playbooks.types import ScoreValue, pct

DEFAULT_MARGIN = 0.05


def earlier_points(signal: LeadSignal) -> list[ScorePoint]:
    """The lead's score history before this signal's own score."""
    history = signal.history
    if history and history[-1].at == signal.score.scored_at:
        return history[:-1]
    return list(history)


def armed(points: list[ScorePoint], fired_side: Any, rearm_side: Any) -> bool:
    """Has the score been on the re-arm side since it was last on the firing side?"""
    last = max((i for i, p in enumerate(points) if fired_side(p.value)), default=None)
    return last is None or any(rearm_side(p.value) for p in points[last + 1 :])


@register(
    "trigger",
    "score.crossed_above",
    """
    trigger: {type: score.crossed_above, value: 70%}
    """,
)
class ScoreCrossedAbove(TriggerKind):
    """Fires when a lead's score goes from below ``value`` to at or above it (``70%`` or
    ``0.7``), once per crossing: it re-arms when the score has been below ``value`` minus
    ``margin`` (default 5%).
    """

    type: Literal["score.crossed_above"]
    value: ScoreValue = Field(gt=0, le=1)
    margin: ScoreValue = Field(default=DEFAULT_MARGIN, ge=0, le=1)
    score_based: ClassVar[bool] = True
    score_fields: ClassVar[tuple[str, ...]] = ("value", "margin")

    def crossed(self, signal: LeadSignal) -> bool:
        prev = signal.score.previous
        return signal.score.value >= self.value and (prev is None or prev < self.value)

    def armed(self, signal: LeadSignal) -> bool:
        low = self.value - self.margin
        return armed(earlier_points(signal), lambda v: v >= self.value, lambda v: v < low)

    def fires(self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime) -> Match | None:
        if not self.crossed(signal) or not self.armed(signal):
            return None
        score, prev = signal.score.value, signal.score.previous
        return {"score.value": score, "score.previous": prev, "threshold": self.value}

    def may_fire(self, signal: LeadSignal) -> bool:
        return self.crossed(signal)

    def why_not(self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime) -> str:
        return (
            f"score crossed {pct(self.value)} again but has not been below "
            f"{pct(self.value - self.margin)} since the last crossing (margin {pct(self.margin)})"
        )


@register(
    "trigger",
    "score.crossed_below",
    """
    trigger: {type: score.crossed_below, value: 40%}
    """,
)
class ScoreCrossedBelow(TriggerKind):
    """Fires when a lead's score goes from at or above ``value`` to below it, once per
    crossing: it re-arms when the score has been at or above ``value`` plus ``margin``.
    """

    type: Literal["score.crossed_below"]
    value: ScoreValue = Field(gt=0, le=1)
    margin: ScoreValue = Field(default=DEFAULT_MARGIN, ge=0, le=1)
    score_based: ClassVar[bool] = True
    score_fields: ClassVar[tuple[str, ...]] = ("value", "margin")

    def crossed(self, signal: LeadSignal) -> bool:
        prev = signal.score.previous
        return signal.score.value < self.value and prev is not None and prev >= self.value

    def armed(self, signal: LeadSignal) -> bool:
        high = self.value + self.margin
        return armed(earlier_points(signal), lambda v: v < self.value, lambda v: v >= high)

    def fires(self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime) -> Match | None:
        if not self.crossed(signal) or not self.armed(signal):
            return None
        score, prev = signal.score.value, signal.score.previous
        return {"score.value": score, "score.previous": prev, "threshold": self.value}

    def may_fire(self, signal: LeadSignal) -> bool:
        return self.crossed(signal)

    def why_not(self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime) -> str:
        return (
            f"score fell below {pct(self.value)} again but has not been at or above "
            f"{pct(self.value + self.margin)} since the last crossing (margin {pct(self.margin)})"
        )

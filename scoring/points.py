"""The points scorer: a YAML list of "event → points", decaying with a half-life.

It stands in until a trained model is promoted, and every score it makes says so
(``rule_based=True``). Points map to a probability-like value with
``1 - exp(-points / scale)``: 0 points → 0 %, ``scale`` points → 63 %, so
thresholds written for the model keep a sensible meaning.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nudge.errors import ConfigError
from nudge.events import EVENT_TYPES, LeadEvent
from nudge.signals import Score
from scoring.state import LeadState

DEFAULT_RULES = Path(__file__).with_name("points.yaml")


class PointsRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=64)]
    event: str
    points: float = Field(ge=-1000, le=1000)
    reason: str = Field(min_length=1, description="plain words; {n} is the count")
    path_prefix: str | None = None
    form: str | None = None
    keyword_contains: str | None = None

    def matches(self, event: LeadEvent) -> bool:
        if event.type != self.event:
            return False
        if self.path_prefix is not None and not str(getattr(event, "path", "") or "").startswith(
            self.path_prefix
        ):
            return False
        if self.form is not None and getattr(event, "form", None) != self.form:
            return False
        return (
            self.keyword_contains is None
            or self.keyword_contains.lower() in str(getattr(event, "keyword", "")).lower()
        )


class PointsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    half_life_hours: float = Field(default=72, gt=0)
    scale: float = Field(default=60, gt=0)
    rules: list[PointsRule]


def load_points_config(path: Path | None = None) -> PointsConfig:
    """Load and validate a points YAML; errors name the file and the field."""
    path = path or DEFAULT_RULES
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        config = PointsConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
    for rule in config.rules:
        if rule.event not in EVENT_TYPES:
            raise ConfigError(f"{path}: rule {rule.id}: unknown event type {rule.event!r}")
    return config


class PointsScorer:
    """Scores a lead by the decayed sum of the points its events earned."""

    def __init__(self, config: PointsConfig | None = None) -> None:
        self.config = config or load_points_config()
        self.version = "points-v1"
        self._decay_per_s = math.log(2) / (self.config.half_life_hours * 3600)

    def _decay(self, state: LeadState, now: dt.datetime) -> None:
        if state.counted_at is not None:
            elapsed = (now - dt.datetime.fromisoformat(state.counted_at)).total_seconds()
            if elapsed > 0:
                factor = math.exp(-self._decay_per_s * elapsed)
                for key in state.counters:
                    state.counters[key] *= factor
        if state.counted_at is None or elapsed > 0:
            state.counted_at = now.isoformat()

    def update(self, state: LeadState, event: LeadEvent) -> dt.datetime:
        """Fold ``event`` into the points counters only; returns the counters' time.

        The model scorer calls this too, so the points are current if a rollback hands
        scoring back to this scorer.
        """
        at = (
            max(event.occurred_at, dt.datetime.fromisoformat(state.counted_at))
            if (state.counted_at)
            else event.occurred_at
        )
        self._decay(state, at)
        for rule in self.config.rules:
            if rule.matches(event):
                state.counters[f"pts:{rule.id}"] = state.counters.get(f"pts:{rule.id}", 0.0) + (
                    rule.points
                )
                state.counters[f"n:{rule.id}"] = state.counters.get(f"n:{rule.id}", 0.0) + 1
        return at

    def rescore(self, state: LeadState, event: LeadEvent, now: dt.datetime) -> Score:
        at = self.update(state, event)
        points = sum(v for k, v in state.counters.items() if k.startswith("pts:"))
        value = 1 - math.exp(-max(points, 0.0) / self.config.scale)
        previous = state.score["value"] if state.score else None
        deal_value = state.profile.get("deal_value")
        return Score(
            value=round(value, 4),
            previous=previous,
            reasons=self._reasons(state),
            model_version=self.version,
            rule_based=True,
            expected_value=round(value * float(deal_value), 2) if deal_value else None,
            scored_at=at,
        )

    def score_at(self, state: LeadState, now: dt.datetime) -> Score:
        """The lead's score as of ``now`` with no new event: the points decayed to ``now``
        (``state`` is not changed). Timer-triggered rules and their texts read this."""
        factor = 1.0
        if state.counted_at is not None:
            elapsed = (now - dt.datetime.fromisoformat(state.counted_at)).total_seconds()
            factor = math.exp(-self._decay_per_s * elapsed) if elapsed > 0 else 1.0
        points = factor * sum(v for k, v in state.counters.items() if k.startswith("pts:"))
        value = 1 - math.exp(-max(points, 0.0) / self.config.scale)
        deal_value = state.profile.get("deal_value")
        return Score(
            value=round(value, 4),
            previous=state.score["value"] if state.score else None,
            reasons=self._reasons(state),
            model_version=self.version,
            rule_based=True,
            expected_value=round(value * float(deal_value), 2) if deal_value else None,
            scored_at=now,
        )

    def rescore_batch(
        self, items: Sequence[tuple[LeadState, LeadEvent]], now: dt.datetime
    ) -> list[Score]:
        """:meth:`rescore` for each ``(state, event)``: points are cheap to word."""
        return [self.rescore(state, event, now) for state, event in items]

    def words_later(self, score: Score) -> bool:
        return False

    def reasons(self, states: Sequence[LeadState]) -> list[list[str]]:
        return [self._reasons(state) for state in states]

    def _reasons(self, state: LeadState) -> list[str]:
        ranked = sorted(
            (
                (state.counters.get(f"pts:{r.id}", 0.0), r)
                for r in self.config.rules
                if state.counters.get(f"pts:{r.id}", 0.0) >= 1
            ),
            key=lambda pr: -pr[0],
        )
        out = []
        for _pts, rule in ranked[:3]:
            n = round(state.counters.get(f"n:{rule.id}", 0.0))
            out.append(rule.reason.format(n=n, s="" if n == 1 else "s"))
        return out

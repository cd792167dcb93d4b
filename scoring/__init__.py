"""Lead scoring: per-lead state, its update from one event, and the scorers.

Plain Python: no Kafka, no Faust. The lead agent calls, per event::

    if apply_event(state, event):          # profile, touches, de-duplication
        score = scorer.rescore(state, event, now)
        state.record_score(score)

:class:`Scorer` is the seam: :class:`scoring.points.PointsScorer` stands in until
a trained model is promoted.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from nudge.events import LeadEvent
from nudge.signals import Score
from scoring.state import LeadState, apply_event


class Scorer(Protocol):
    """Updates a lead's scorer-specific features from one event and scores it."""

    version: str

    def rescore(self, state: LeadState, event: LeadEvent, now: dt.datetime) -> Score:
        """Fold ``event`` into ``state``'s features and return the new score."""
        ...


__all__ = ["LeadState", "Scorer", "apply_event"]

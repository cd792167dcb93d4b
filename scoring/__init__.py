"""Lead scoring: per-lead state, its update from one event, and the scorers.

Plain Python: no Kafka, no Faust. The lead agent calls, per event::

    if apply_event(state, event):          # profile, touches, de-duplication
        score = scorer.rescore(state, event, now)
        state.record_score(score)

(per micro-batch it calls ``scorer.rescore_batch`` instead: one tree walk for all the
batch's leads, the reasons worded only for scores a rule may act on).

:class:`Scorer` is the seam. A worker constructs
:class:`scoring.model_scorer.LiveScorer` (``LiveScorer(settings.data_dir)``): it scores
with the promoted model and lets :class:`scoring.points.PointsScorer` stand in until a
model trained on enough conversions is promoted. ``apply_event`` folds every event into
the model features whichever scorer is active.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from nudge.events import LeadEvent
from nudge.signals import Score
from scoring.state import LeadState, apply_event


class Scorer(Protocol):
    """Updates a lead's scorer-specific features from one event and scores it."""

    @property
    def version(self) -> str:
        """The model version (or ``points-v1``) that the next score will carry."""
        ...

    def rescore(self, state: LeadState, event: LeadEvent, now: dt.datetime) -> Score:
        """Fold ``event`` into ``state``'s features and return the new score."""
        ...

    def score_at(self, state: LeadState, now: dt.datetime) -> Score:
        """The score as of ``now`` with no new event (time-dependent features decayed)."""
        ...

    def rescore_batch(
        self, items: Sequence[tuple[LeadState, LeadEvent]], now: dt.datetime
    ) -> list[Score]:
        """:meth:`rescore` for many leads at once (each lead at most once). A scorer may
        leave reasons unworded where wording costs more than scoring (:meth:`words_later`
        says which); :meth:`reasons` words them when a rule or a reader needs them."""
        ...

    def words_later(self, score: Score) -> bool:
        """True when ``score`` came from :meth:`rescore_batch` without its reasons."""
        ...

    def reasons(self, states: Sequence[LeadState]) -> list[list[str]]:
        """The plain-word reasons of each state's current score."""
        ...


__all__ = ["LeadState", "Scorer", "apply_event"]

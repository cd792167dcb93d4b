"""The lead signal is built without re-validating its parts: it must be the very model
validation would build, and survive the topic (JSON) unchanged."""

from __future__ import annotations

import datetime as dt

from nudge.signals import LeadSignal, RepView
from playbooks.windows import Window, track
from scoring.points import PointsScorer
from scoring.state import LeadState, apply_event

from .helpers import at, created, demo, view


def test_signal_equals_the_validated_model_and_its_json() -> None:
    scorer, state = PointsScorer(), LeadState(lead_id="L1")
    visits = Window(event="page.viewed", where=(), within=dt.timedelta(hours=6), keep=5)
    windows = {visits.key: visits}
    events = [created("L1", 0, company="Acme", employees=40), view("L1", 1), view("L1", 2)]
    events.append(demo("L1", 3))
    for event in events:
        assert apply_event(state, event)
        track(state.windows, windows, event.type, event.model_dump(mode="json"), event.occurred_at)
        score = scorer.rescore(state, event, at(4))
        state.record_score(score)
    rep = RepView(rep_id="r1", timezone="Europe/Paris")
    signal = state.signal(events[-1], score, rep)
    assert len(signal.history) == 4 and signal.windows[visits.key]
    assert signal.first_scored_at == dt.datetime.fromisoformat(state.history[0][0])
    validated = LeadSignal.model_validate(signal.model_dump())
    assert validated == signal
    assert LeadSignal.model_validate_json(signal.model_dump_json()) == signal

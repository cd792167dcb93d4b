"""Live score snapshots train the same model inputs as a replay of the same events."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from crm.store import Store
from scoring.points import PointsScorer
from scoring.state import LeadState, apply_event, snapshot_row
from scoring.synthetic import generate
from scoring.train import replay, snapshots_from_rows

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


async def test_store_snapshots_equal_replay(tmp_path: Path) -> None:
    """Rows recorded as the lead agent records them, read back from SQLite, give the same
    vectors, times, leads and labels as replaying the events: no train/serve skew."""
    synthetic = generate(n_leads=120, days=60, seed=3)
    events = sorted(
        (e for e in synthetic.events if e.lead_id), key=lambda e: (e.occurred_at, e.event_id)
    )
    scorer, states, rows = PointsScorer(), {}, []
    for event in events:
        state = states.setdefault(event.lead_id, LeadState(str(event.lead_id)))
        if apply_event(state, event):
            score = scorer.rescore(state, event, NOW)
            state.record_score(score)
            rows.append(snapshot_row(state, event, score))
    store = await Store.open(tmp_path / "nudge.db")
    await store.save_snapshots(rows)
    stored = await store.snapshots()
    await store.close()

    live = snapshots_from_rows(stored)
    replayed = replay(events, names=live.names)
    assert len(live.t) == len(replayed.t) > 100
    assert live.lead == replayed.lead
    np.testing.assert_allclose(live.t, replayed.t)
    np.testing.assert_allclose(live.x, replayed.x, rtol=1e-6)
    horizon = 30 * 86400.0
    np.testing.assert_array_equal(
        live.labels(horizon, live.data_end), replayed.labels(horizon, replayed.data_end)
    )
    assert live.converted_at == replayed.converted_at

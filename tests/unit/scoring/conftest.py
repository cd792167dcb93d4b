"""One small trained model shared by the scoring tests (trained once per session)."""

from __future__ import annotations

import datetime as dt

import pytest

from scoring.synthetic import Synthetic, generate
from scoring.train import Snapshots, TrainResult, replay, train


@pytest.fixture(scope="session")
def small_world() -> tuple[Synthetic, Snapshots, TrainResult]:
    """1,500 synthetic leads over 180 days, replayed and trained on (~7 s)."""
    data = generate(n_leads=1500, days=180, seed=7)
    snaps = replay(data.events)
    result = train(snaps, now=dt.datetime(2026, 6, 1, tzinfo=dt.UTC), progress=None)
    return data, snaps, result

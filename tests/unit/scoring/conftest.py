"""One small trained model shared by the scoring tests (trained once per session)."""

from __future__ import annotations

import datetime as dt

import pytest

from scoring.synthetic import Synthetic, generate
from scoring.train import Snapshots, TrainResult, replay, train


@pytest.fixture(scope="session")
def small_world() -> tuple[Synthetic, Snapshots, TrainResult]:
    """600 synthetic leads over 120 days, replayed and trained on (~3 s)."""
    data = generate(n_leads=600, days=120, seed=3)
    snaps = replay(data.events)
    result = train(snaps, now=dt.datetime(2026, 6, 1, tzinfo=dt.UTC), progress=None)
    return data, snaps, result

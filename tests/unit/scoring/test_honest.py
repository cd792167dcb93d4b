"""Honest probabilities: censoring-aware labels, calibration on a fresh world, the checks."""

from __future__ import annotations

import datetime as dt

import numpy as np
from sklearn.metrics import brier_score_loss

from scoring.model_scorer import CompiledModel
from scoring.reliability import auc_interval, format_honesty, honesty, reliability_table
from scoring.synthetic import generate
from scoring.train import replay, train

DAY = 86400.0
WARM_UP_DAYS = 30
"""A generated world starts empty: in its first horizon every lead is younger than the
horizon, which never happens to a running business; the fresh-world check starts after."""


def test_fresh_world_probabilities_are_honest(small_world) -> None:  # type: ignore[no-untyped-def]
    """On a fresh generated world the model's Brier score beats always guessing the
    observed rate, its mean is within 3 points of it, and its top decile's predicted
    rate is within 5 points of the observed one."""
    _data, snaps, result = small_world
    fresh = generate(n_leads=1500, days=180, seed=11)
    test = replay(fresh.events, names=snaps.names)
    y = test.labels(30 * DAY, known_at=test.data_end)
    first = test.t.min()
    mask = ~np.isnan(y) & (test.t + 30 * DAY <= test.data_end)
    mask &= test.t >= first + WARM_UP_DAYS * DAY
    model = CompiledModel(result.booster_json, result.meta)
    p = model.calibrate.many(model.trees.margins(test.x[mask]))
    yy = y[mask]
    h = honesty(yy, p)
    assert h["brier"] < h["brier_constant"], h
    assert abs(h["mean_predicted"] - h["positive_rate"]) < 0.03, h
    assert abs(h["top_decile_predicted"] - h["top_decile_observed"]) < 0.05, h


def test_calibration_and_holdout_use_only_complete_labels(small_world) -> None:  # type: ignore[no-untyped-def]
    """The holdout ends one horizon before the data, and its positive rate is the
    population's (not the early closers'); the labelled share is reported."""
    _data, snaps, result = small_world
    meta = result.meta
    end = dt.datetime.fromisoformat(meta["window"]["end"])
    labelled_until = dt.datetime.fromisoformat(meta["window"]["labelled_until"])
    assert end - labelled_until == dt.timedelta(days=30)
    assert 0.5 < meta["labelled_share"] < 1.0
    y = snaps.labels(30 * DAY, known_at=snaps.data_end)
    complete = snaps.t <= labelled_until.timestamp()
    population = float(np.nanmean(y[complete]))
    checks = meta["metrics"]["holdout_checks"]
    assert abs(checks["positive_rate"] - population) < 0.06, (checks, population)


def test_train_reports_the_ground_truth_beside_the_model() -> None:
    """With the generating process known, train measures the truth on the same holdout:
    the truth's AUC is at least the model's, and both beat the constant guess."""
    data = generate(n_leads=600, days=150, seed=3)
    snaps = replay(data.events)
    result = train(
        snaps, now=dt.datetime(2026, 6, 1, tzinfo=dt.UTC), progress=None, truth=data.within
    )
    m, truth = result.meta["metrics"]["holdout_checks"], result.meta["metrics"]["ground_truth"]
    assert truth["n"] == m["n"]
    assert truth["roc_auc"] >= m["roc_auc"] - 0.02
    assert truth["brier"] < truth["brier_constant"]


def test_truth_within_the_horizon_matches_the_generated_outcomes() -> None:
    """The ground truth's probability of a label is right on average: its mean over
    complete snapshots is within 2 points of the observed rate."""
    data = generate(n_leads=1000, days=150, seed=5)
    snaps = replay(data.events)
    y = snaps.labels(30 * DAY, known_at=snaps.data_end)
    mask = ~np.isnan(y) & (snaps.t + 30 * DAY <= snaps.data_end)
    p = np.asarray(
        [data.within(lead, t) for lead, t, m in zip(snaps.lead, snaps.t, mask, strict=True) if m]
    )
    assert abs(p.mean() - y[mask].mean()) < 0.02
    assert brier_score_loss(y[mask], p) < brier_score_loss(y[mask], np.full(mask.sum(), 0.3))


def test_reliability_table_and_interval() -> None:
    """Ten equal bins, highest first; a group bootstrap gives a wider AUC interval than
    a row bootstrap when rows of one group repeat."""
    rng = np.random.default_rng(0)
    p = rng.random(2000)
    y = (rng.random(2000) < p).astype(float)
    table = reliability_table(y, p)
    assert len(table) == 10 and table[0]["predicted"] > table[-1]["predicted"]
    assert abs(table[0]["observed"] - table[0]["predicted"]) < 0.06
    lead = [f"L{i // 20}" for i in range(2000)]
    yg = np.repeat(y[::20], 20)
    pg = np.repeat(p[::20], 20)
    lo_r, hi_r = auc_interval(yg, pg)
    lo_g, hi_g = auc_interval(yg, pg, lead)
    assert hi_g - lo_g > 2 * (hi_r - lo_r)
    text = format_honesty("holdout", honesty(y, p))
    assert "beats the constant-rate guess" in text and "decile" in text

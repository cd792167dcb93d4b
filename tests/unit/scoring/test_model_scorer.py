"""The live model scorer: same numbers as offline, probabilities, EV and reasons."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import xgboost as xgb

from scoring.features import compile_extractors, feature_vector
from scoring.model_scorer import Calibrator, CompiledModel, ModelScorer
from scoring.state import LeadState, apply_event

from .helpers import created, demo, view

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def test_live_scores_equal_the_offline_model(small_world) -> None:  # type: ignore[no-untyped-def]
    """The compiled tree walk + calibration gives XGBoost's calibrated probability."""
    _data, snaps, result = small_world
    model = CompiledModel(result.booster_json, result.meta)
    booster = xgb.Booster()
    booster.load_model(bytearray(result.booster_json))
    rows = snaps.x[:200]
    ref = Calibrator(result.meta["calibration"]).many(
        booster.predict(xgb.DMatrix(rows, missing=np.nan), output_margin=True).astype(np.float64)
    )
    ours = [model.predict(rows[i]) for i in range(200)]
    assert np.abs(np.asarray(ours) - ref).max() < 1e-4


def test_score_has_version_expected_value_and_plain_reasons(small_world) -> None:  # type: ignore[no-untyped-def]
    """A model score carries its version, P × deal value and up to 3 worded reasons."""
    result = small_world[2]
    scorer = ModelScorer(CompiledModel(result.booster_json, {**result.meta, "version": "m1"}))
    state = LeadState("L")
    events = [created("L", 0, industry="software", employees=80, deal_value=10000)]
    events += [view("L", h, "/pricing") for h in (1, 2, 3)] + [demo("L", 4)]
    score = None
    for e in events:
        apply_event(state, e)
        score = scorer.rescore(state, e, NOW)
        state.record_score(score)
    assert score is not None and not score.rule_based and score.model_version == "m1"
    assert 0 <= score.value <= 1
    assert score.expected_value == pytest.approx(score.value * 10000, abs=0.01)
    assert score.previous is not None
    assert 1 <= len(score.reasons) <= 3
    assert all(
        isinstance(r, str) and "=" not in r and ":" not in r.split()[0] for r in score.reasons
    )


def test_active_leads_outrank_quiet_ones(small_world) -> None:  # type: ignore[no-untyped-def]
    """Pricing visits and a demo request raise the score above a lead with one blog view."""
    result = small_world[2]
    scorer = ModelScorer(CompiledModel(result.booster_json, result.meta))
    hot, cold = LeadState("H"), LeadState("C")
    for e in (
        [created("H", 0, industry="software", employees=80)]
        + [view("H", h, "/pricing") for h in (1, 2, 3, 5, 8)]
        + [demo("H", 9)]
    ):
        apply_event(hot, e)
    apply_event(cold, created("C", 0, industry="software", employees=80))
    last = view("C", 9, "/blog")
    apply_event(cold, last)
    assert scorer.rescore(hot, last, NOW).value > scorer.rescore(cold, last, NOW).value


def test_rescore_many_matches_one_by_one(small_world) -> None:  # type: ignore[no-untyped-def]
    """The batch path gives the same probabilities as the single-row path."""
    result = small_world[2]
    model = CompiledModel(result.booster_json, result.meta)
    scorer = ModelScorer(model)
    states = []
    for i, n in enumerate((0, 2, 6)):
        s = LeadState(f"L{i}")
        for h in range(n):
            apply_event(s, view(f"L{i}", h, "/pricing"))
        apply_event(s, created(f"L{i}", 0.5, industry="retail"))
        states.append(s)
    t = NOW.timestamp()
    many = scorer.rescore_many(states, NOW)
    ext = compile_extractors(model.names)
    one = [
        model.predict(np.asarray(feature_vector(s.features, s.profile, ext, t), dtype=np.float32))
        for s in states
    ]
    assert many == pytest.approx(one, abs=1e-5)


def test_a_crm_field_is_one_reason_and_scores_stay_inside_bounds(small_world) -> None:  # type: ignore[no-untyped-def]
    """One-hot levels never give "industry is not X" reasons, and no score reads 0 % or 100 %."""
    _data, snaps, result = small_world
    model = CompiledModel(result.booster_json, result.meta)
    for i in range(0, len(snaps.t), max(1, len(snaps.t) // 300)):
        p, reasons = model.explain(snaps.x[i])
        assert 0.001 <= p <= 0.999
        assert not any(" is not " in r for r in reasons)


def test_reasons_are_actionable_pushes_up(small_world) -> None:  # type: ignore[no-untyped-def]
    """Every reason raised the score by at least MIN_REASON, names something that
    happened (never "no ..."), and never a field marked non-actionable."""
    from scoring.features import describe
    from scoring.model_scorer import MIN_REASON

    _data, snaps, result = small_world
    model = CompiledModel(
        result.booster_json, result.meta, non_actionable=["deal_value", "age_days"]
    )
    blocked = {describe("deal_value", 1.0)[:9], "lead is"}
    seen = 0
    for i in range(0, len(snaps.t), max(1, len(snaps.t) // 300)):
        x = snaps.x[i]
        _p, reasons = model.explain(x)
        _m, contribs, _b = model.trees.margin_and_contribs(x)
        per_group = np.bincount(model.group_of, weights=contribs, minlength=len(model.members))
        worded = {model._describe_group(g, x): float(per_group[g]) for g in range(len(per_group))}
        for r in reasons:
            seen += 1
            assert worded[r] >= MIN_REASON, (r, worded[r])
            assert not r.startswith("no ") and "not answered" not in r and "unknown" not in r
            assert not any(r.startswith(b) for b in blocked), r
    assert seen > 50


def test_a_batch_scores_like_one_by_one_and_words_reasons_on_demand(small_world) -> None:  # type: ignore[no-untyped-def]
    """``rescore_batch`` gives each lead the score ``rescore`` gives, without reasons;
    ``reasons`` then words exactly the reasons ``rescore`` would have carried."""
    result = small_world[2]
    scorer = ModelScorer(CompiledModel(result.booster_json, {**result.meta, "version": "m1"}))
    batch, alone = [], []
    for i, n in enumerate((0, 2, 6)):
        for states in (batch, alone):
            s = LeadState(f"L{i}")
            apply_event(s, created(f"L{i}", 0, industry="software", employees=80))
            for h in range(n):
                apply_event(s, view(f"L{i}", h + 1, "/pricing"))
            apply_event(s, demo(f"L{i}", n + 2))
            states.append(s)
    last = demo("L", 9)
    scores = scorer.rescore_batch([(s, last) for s in batch], NOW)
    expected = [scorer.rescore(s, last, NOW) for s in alone]
    assert [s.value for s in scores] == [e.value for e in expected]
    assert [s.scored_at for s in scores] == [e.scored_at for e in expected]
    assert all(s.reasons == [] for s in scores)
    for state, score in zip(batch, scores, strict=True):
        state.record_score(score)
    assert scorer.reasons(batch) == [e.reasons for e in expected]
    assert any(e.reasons for e in expected)
    other = LeadState("X")
    other.record_score(expected[0].model_copy(update={"model_version": "m0"}))
    assert scorer.reasons([other]) == [[]]  # another model's score is not worded by this one

"""Our numpy tree walk against XGBoost itself."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from scoring.trees import CompiledTrees


@pytest.fixture(scope="module")
def booster() -> tuple[xgb.Booster, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 12)).astype(np.float32)
    x[rng.random(x.shape) < 0.15] = np.nan  # missing values take the default branch
    y = (np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]) * np.nan_to_num(x[:, 2]) > 0).astype(int)
    b = xgb.train(
        {"objective": "binary:logistic", "max_depth": 6, "scale_pos_weight": 3.0},
        xgb.DMatrix(x, y),
        60,
    )
    return b, x


def test_margins_match_xgboost_including_missing_values(
    booster: tuple[xgb.Booster, np.ndarray],
) -> None:
    """One-row and batch margins equal XGBoost's output_margin to float32 precision."""
    b, x = booster
    trees = CompiledTrees.from_booster_json(b.save_raw("json"), 12)
    ref = b.predict(xgb.DMatrix(x[:300]), output_margin=True)
    one = np.array([trees.margin(x[i]) for i in range(300)])
    assert np.abs(one - ref).max() < 1e-4
    assert np.abs(trees.margins(x[:300]) - ref).max() < 1e-4


def test_saabas_contributions_match_xgboost_approx_contribs(
    booster: tuple[xgb.Booster, np.ndarray],
) -> None:
    """Our path attributions equal pred_contribs(approx_contribs=True) and sum to the margin."""
    b, x = booster
    trees = CompiledTrees.from_booster_json(b.save_raw("json"), 12)
    ref = b.predict(xgb.DMatrix(x[:20]), pred_contribs=True, approx_contribs=True)
    for i in range(20):
        margin, contribs, bias = trees.margin_and_contribs(x[i])
        assert np.abs(contribs - ref[i, :-1]).max() < 1e-4
        assert bias == pytest.approx(float(ref[i, -1]), abs=1e-4)
        assert contribs.sum() + bias == pytest.approx(margin, abs=1e-4)


def test_refuses_a_non_binary_objective() -> None:
    """A regression booster is rejected with the objective named."""
    x = np.random.default_rng(0).normal(size=(50, 2))
    b = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(x, x[:, 0]), 2)
    with pytest.raises(ValueError, match="reg:squarederror"):
        CompiledTrees.from_booster_json(b.save_raw("json"), 2)


def test_a_batch_walk_gives_each_row_what_its_own_walk_gives(
    booster: tuple[xgb.Booster, np.ndarray],
) -> None:
    """Margins and contributions of 50 rows walked together equal one row at a time."""
    b, x = booster
    trees = CompiledTrees.from_booster_json(b.save_raw("json"), 12)
    margins, contribs, bias = trees.margins_and_contribs(x[:50])
    ref = b.predict(xgb.DMatrix(x[:50]), pred_contribs=True, approx_contribs=True)
    assert np.abs(contribs - ref[:, :-1]).max() < 1e-4
    for i in range(50):
        margin, one, one_bias = trees.margin_and_contribs(x[i])
        assert margins[i] == pytest.approx(margin, abs=1e-9)
        assert np.abs(contribs[i] - one).max() < 1e-9
        assert one_bias == bias

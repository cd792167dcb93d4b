"""How far a model's probabilities can be trusted: reliability table, Brier skill, AUC interval.

Why a module of its own: a percentage in a text is a promise, so ``train`` and
``evaluate`` print the same three checks beside every AUC, worded the same way:

* the **reliability table** — predictions cut into ten equal-count bins, the mean
  predicted probability against the observed rate in each (a calibrated model has them
  close in every bin, and the top bin is the one texts quote);
* the **Brier score against the constant-rate guess** — always predicting the observed
  positive rate is the cheapest honest forecast; a model whose Brier score is not below
  it is worse than no model at all as a probability, whatever its AUC;
* **ROC AUC with a 95 % interval** from a bootstrap that resamples whole groups (leads):
  the snapshots of one lead are strongly correlated, so resampling rows would make the
  interval look far narrower than it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score

BOOTSTRAP_ROUNDS = 200


def reliability_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Equal-count bins of ``p`` (highest first): n, mean predicted, observed rate."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(-p, kind="stable")
    out = []
    for part in np.array_split(order, bins):
        if len(part):
            out.append(
                {
                    "n": len(part),
                    "predicted": round(float(p[part].mean()), 4),
                    "observed": round(float(y[part].mean()), 4),
                }
            )
    return out


def auc_interval(
    y: np.ndarray,
    p: np.ndarray,
    groups: Sequence[str] | None = None,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> tuple[float, float]:
    """A 95 % bootstrap interval of the ROC AUC, resampling whole ``groups`` when given."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    if len(np.unique(y)) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    if groups is None:
        members = [np.asarray([i]) for i in range(len(y))]
    else:
        by: dict[str, list[int]] = {}
        for i, g in enumerate(groups):
            by.setdefault(g, []).append(i)
        members = [np.asarray(v) for v in by.values()]
    aucs = []
    for _ in range(rounds):
        pick = rng.integers(0, len(members), len(members))
        idx = np.concatenate([members[k] for k in pick])
        if len(np.unique(y[idx])) == 2:
            aucs.append(roc_auc_score(y[idx], p[idx]))
    if not aucs:
        return math.nan, math.nan
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    return round(float(lo), 4), round(float(hi), 4)


def honesty(
    y: np.ndarray,
    p: np.ndarray,
    groups: Sequence[str] | None = None,
    constant: float | None = None,
) -> dict[str, Any]:
    """The checks above for predictions ``p`` of outcomes ``y``.

    ``constant`` is the rate the constant guess uses; by default the observed rate of
    ``y`` itself (the hardest constant to beat, since it knows the answer's average).
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    rate = float(y.mean()) if len(y) else math.nan
    guess = rate if constant is None else constant
    table = reliability_table(y, p)
    two = len(np.unique(y)) == 2
    return {
        "n": len(y),
        "positive_rate": round(rate, 4),
        "mean_predicted": round(float(p.mean()), 4) if len(p) else math.nan,
        "brier": round(float(brier_score_loss(y, p)), 4),
        "brier_constant": round(float(brier_score_loss(y, np.full(len(y), guess))), 4),
        "roc_auc": round(float(roc_auc_score(y, p)), 4) if two else math.nan,
        "roc_auc_95": list(auc_interval(y, p, groups)),
        "top_decile_predicted": table[0]["predicted"] if table else math.nan,
        "top_decile_observed": table[0]["observed"] if table else math.nan,
        "reliability": table,
    }


def format_honesty(name: str, h: dict[str, Any], truth: dict[str, Any] | None = None) -> str:
    """The checks as text for a terminal: one summary line and the reliability table."""
    lo, hi = h["roc_auc_95"]
    verdict = "beats" if h["brier"] < h["brier_constant"] else "does NOT beat"
    lines = [
        f"{name}: {h['n']:,} rows, {h['positive_rate']:.1%} positive, "
        f"mean predicted {h['mean_predicted']:.1%}",
        f"  ROC AUC {h['roc_auc']:.3f} (95% {lo:.3f}-{hi:.3f}); Brier {h['brier']:.4f} "
        f"{verdict} the constant-rate guess {h['brier_constant']:.4f}",
    ]
    if truth is not None:
        tlo, thi = truth["roc_auc_95"]
        lines.append(
            f"  ground truth: ROC AUC {truth['roc_auc']:.3f} (95% {tlo:.3f}-{thi:.3f}), "
            f"Brier {truth['brier']:.4f}"
        )
    lines.append("  decile  predicted  observed       n")
    for k, row in enumerate(h["reliability"], 1):
        lines.append(f"  {k:>6}  {row['predicted']:>9.1%}  {row['observed']:>8.1%}  {row['n']:>6,}")
    return "\n".join(lines)

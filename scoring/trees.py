"""Evaluate an XGBoost booster one row at a time, fast, with Saabas reasons.

Why not ``booster.inplace_predict``: on one row it costs ~560 µs, nearly all fixed
per-call overhead (the tree work itself is ~7 µs), and exact ``pred_contribs`` costs
~7.5 ms. The lead agent scores one event at a time, so we load the booster's JSON once
into flat numpy arrays (every node of every tree) and walk all trees at once, one tree
level per step: a handful of vectorised array operations per level, ~50 µs for 300 trees
of depth 6.

The same walk gives path attributions (Saabas, the method behind XGBoost's
``approx_contribs``): each split moves the tree's expected value from the parent's
cover-weighted mean to the child's, and that difference is credited to the split's
feature. Contributions plus the bias sum exactly to the margin, so a reason's weight is
in the same log-odds units as the score.

Leaves point to themselves, so trees of different depths need no special case. Values
are compared in float32, as XGBoost does, so results match ``predict`` to ~1e-6.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass
class CompiledTrees:
    """All trees of one booster as flat arrays; node ids are global across trees."""

    roots: I64
    left: I64
    right: I64
    feature: I64
    threshold: F32
    default_left: npt.NDArray[np.bool_]
    mean: F64
    leaf_value: F64
    depth: int
    base_margin: float
    n_features: int

    @classmethod
    def from_booster_json(
        cls, raw: str | bytes | bytearray | dict[str, Any], n_features: int
    ) -> CompiledTrees:
        """Compile the JSON of ``booster.save_raw("json")`` (binary:logistic, gbtree)."""
        doc = raw if isinstance(raw, dict) else json.loads(raw)
        learner = doc["learner"]
        objective = learner["objective"]["name"]
        if objective not in {"binary:logistic", "reg:logistic", "binary:logitraw"}:
            raise ValueError(f"unsupported objective {objective!r}: expected binary:logistic")
        base = str(learner["learner_model_param"]["base_score"]).strip("[]")
        base_score = float(base)
        if objective == "binary:logitraw":
            base_margin = base_score
        else:
            base_margin = math.log(base_score / (1 - base_score))
        model = learner["gradient_booster"]["model"]
        trees = model["trees"]
        left: list[int] = []
        right: list[int] = []
        feature: list[int] = []
        threshold: list[float] = []
        default_left: list[bool] = []
        mean: list[float] = []
        leaf: list[float] = []
        roots: list[int] = []
        max_depth = 0
        for tree in trees:
            off = len(left)
            roots.append(off)
            lc, rc = tree["left_children"], tree["right_children"]
            cond, idx = tree["split_conditions"], tree["split_indices"]
            dl, cover = tree["default_left"], tree["sum_hessian"]
            n = len(lc)
            means = [0.0] * n
            depths = [0] * n
            for i in range(n):  # parents come before children in XGBoost's numbering
                if lc[i] != -1:
                    depths[lc[i]] = depths[rc[i]] = depths[i] + 1
            for i in reversed(range(n)):
                if lc[i] == -1:
                    means[i] = float(cond[i])
                else:
                    cl, cr = float(cover[lc[i]]), float(cover[rc[i]])
                    total = cl + cr
                    means[i] = (
                        (cl * means[lc[i]] + cr * means[rc[i]]) / total
                        if total > 0
                        else 0.5 * (means[lc[i]] + means[rc[i]])
                    )
            max_depth = max(max_depth, max(depths))
            for i in range(n):
                is_leaf = lc[i] == -1
                left.append(off + i if is_leaf else off + lc[i])
                right.append(off + i if is_leaf else off + rc[i])
                feature.append(0 if is_leaf else int(idx[i]))
                threshold.append(0.0 if is_leaf else float(cond[i]))
                default_left.append(bool(dl[i]))
                mean.append(means[i])
                leaf.append(float(cond[i]) if is_leaf else 0.0)
        return cls(
            roots=np.asarray(roots, dtype=np.int64),
            left=np.asarray(left, dtype=np.int64),
            right=np.asarray(right, dtype=np.int64),
            feature=np.asarray(feature, dtype=np.int64),
            threshold=np.asarray(threshold, dtype=np.float32),
            default_left=np.asarray(default_left, dtype=np.bool_),
            mean=np.asarray(mean, dtype=np.float64),
            leaf_value=np.asarray(leaf, dtype=np.float64),
            depth=max_depth,
            base_margin=base_margin,
            n_features=n_features,
        )

    def __post_init__(self) -> None:
        # both children of node i at 2i (left) and 2i + 1 (right): one gather a level
        self.children: I64 = np.stack([self.left, self.right], axis=1).ravel()

    def _walk(self, rows: F32) -> tuple[int, I64, I64]:
        """Start of a walk of ``rows`` (n, n_features) through every tree: the row count,
        each (row, tree) pair's current node (flat, row-major) and its row's offset into
        ``rows.ravel()``."""
        n, trees = rows.shape[0], self.roots.size
        return n, np.tile(self.roots, n), np.repeat(np.arange(n) * rows.shape[1], trees)

    def _down(self, flat: F32, base: I64, idx: I64) -> tuple[I64, I64]:
        """One level down for every (row, tree): the features split on and the next nodes.
        A missing value (NaN) takes the split's default branch."""
        f = self.feature[idx]
        v = flat[base + f]
        right = ~((v < self.threshold[idx]) | (np.isnan(v) & self.default_left[idx]))
        return f, self.children[2 * idx + right]

    def margin(self, x: F32) -> float:
        """The raw log-odds for one row (``x`` float32, NaN = missing)."""
        return float(self.margins(x.reshape(1, -1))[0])

    def margin_and_contribs(self, x: F32) -> tuple[float, F64, float]:
        """Margin, per-feature Saabas contributions, and the bias (sum of root means).

        ``bias + contribs.sum() == margin - base_margin + base_margin`` up to rounding.
        """
        margins, contribs, bias = self.margins_and_contribs(x.reshape(1, -1))
        return float(margins[0]), contribs[0], bias

    def margins(self, rows: F32) -> F64:
        """Margins for many rows at once (``rows`` shape (n, n_features))."""
        n, idx, base = self._walk(rows)
        flat = np.ascontiguousarray(rows, dtype=np.float32).ravel()
        for _ in range(self.depth):
            _f, idx = self._down(flat, base, idx)
        out: F64 = self.base_margin + self.leaf_value[idx].reshape(n, -1).sum(axis=1)
        return out

    def margins_and_contribs(self, rows: F32) -> tuple[F64, F64, float]:
        """Margins (n,), Saabas contributions (n, n_features) and the bias, for many rows
        in one walk: what a batch of reasons costs about what one did."""
        n, idx, base = self._walk(rows)
        nf = rows.shape[1]
        flat = np.ascontiguousarray(rows, dtype=np.float32).ravel()
        contribs = np.zeros(n * nf, dtype=np.float64)
        here = self.mean[idx]
        for _ in range(self.depth):
            f, idx = self._down(flat, base, idx)
            there = self.mean[idx]  # a leaf points to itself: it adds nothing
            contribs += np.bincount(base + f, weights=there - here, minlength=n * nf)
            here = there
        margins: F64 = self.base_margin + self.leaf_value[idx].reshape(n, -1).sum(axis=1)
        bias = self.base_margin + float(self.mean[self.roots].sum())
        return margins, contribs.reshape(n, nf), bias


def sigmoid(z: float) -> float:
    """Logistic function, safe for large |z|."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)

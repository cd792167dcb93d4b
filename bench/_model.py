"""The model a team runs once it has history, for the benchmarks: 300 trees, depth 6.

:func:`promote_reference_model` trains Nudge's event model on a generated history
(``scoring.synthetic``) with the project's own training code, then fits a booster of
exactly ``trees`` trees of depth ``depth`` on the same snapshots and labels, calibrates
it on them (``scoring.learn.calibrate``), saves it in the data dir's registry with the
trained model's metadata, and promotes it. Early stopping would keep far fewer trees on
the generated data; the benchmark needs the size the architecture's cost table names.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import xgboost as xgb

from scoring.learn import DEFAULT_PARAMS, calibrate
from scoring.registry import Registry
from scoring.synthetic import generate
from scoring.train import replay, train


def promote_reference_model(
    data_dir: Path, *, trees: int = 300, depth: int = 6, leads: int = 1000
) -> str:
    """Train, save and promote a ``trees``-tree model in ``data_dir``; returns its version."""
    now = dt.datetime.now(dt.UTC)
    snaps = replay(generate(leads).events)
    trained = train(snaps, now=now, progress=None)
    y = snaps.labels(30 * 86400.0, known_at=snaps.data_end)
    known = ~np.isnan(y)
    params = {**DEFAULT_PARAMS, "max_depth": depth, "seed": 0}
    dtrain = xgb.DMatrix(snaps.x[known], y[known], missing=np.nan)
    booster = xgb.train(params, dtrain, num_boost_round=trees)
    margins = booster.predict(dtrain, output_margin=True).astype(np.float64)
    meta = {
        **trained.meta,
        "trees": trees,
        "calibration": calibrate(margins, y[known]),
        "note": f"benchmark reference model: {trees} trees of depth {depth}",
    }
    registry = Registry(data_dir)
    info = registry.save(bytes(booster.save_raw("json")), meta, now)
    registry.promote(info.version, now)
    return info.version

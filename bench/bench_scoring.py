"""Scoring benchmark: single-event rescoring time and training time per 100k snapshots.

One command (``python bench/bench_scoring.py``): generates synthetic leads (fixed
seed), replays them, trains a model into a temporary registry, promotes it, then
re-plays events one at a time through ``apply_event`` + ``LiveScorer.rescore`` — what
the lead agent does per event (feature update + tree walk + calibration + reasons).
Prints p50/p99 in µs, and the training time scaled to 100k snapshots.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoring.model_scorer import LiveScorer
from scoring.registry import Registry
from scoring.state import LeadState, apply_event
from scoring.synthetic import generate
from scoring.train import replay, train


def reference_size() -> None:
    """The architecture's reference model (300 trees, depth 6, 40 features): our walk vs
    XGBoost's one-row ``inplace_predict`` and approximate contributions."""
    import numpy as np
    import xgboost as xgb

    from scoring.trees import CompiledTrees

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, 40)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(size=20000) > 0).astype(int)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 6, "nthread": 2},
        xgb.DMatrix(x, y),
        300,
    )
    trees = CompiledTrees.from_booster_json(booster.save_raw("json"), 40)
    row = x[:1]
    perf = time.perf_counter
    reps = 2000
    start = perf()
    for i in range(reps):
        trees.margin_and_contribs(x[i])
    walk = (perf() - start) / reps * 1e6
    start = perf()
    for _ in range(200):
        booster.inplace_predict(row)
    inplace = (perf() - start) / 200 * 1e6
    start = perf()
    for _ in range(50):
        booster.predict(xgb.DMatrix(row), pred_contribs=True, approx_contribs=True)
    approx = (perf() - start) / 50 * 1e6
    print(
        f"300 trees depth 6: our walk + Saabas {walk:.0f} µs; XGBoost inplace_predict "
        f"{inplace:.0f} µs; approx pred_contribs {approx:.0f} µs"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=3000)
    parser.add_argument("--events", type=int, default=20000, help="events to time one by one")
    args = parser.parse_args()

    data = generate(args.leads)
    t0 = time.perf_counter()
    snaps = replay(data.events)
    t_replay = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = train(snaps, now=dt.datetime.now(dt.UTC), progress=None)
    t_train = time.perf_counter() - t0
    n_train = result.meta["snapshots"]["train"] + result.meta["snapshots"]["validation"]

    with tempfile.TemporaryDirectory() as tmp:
        reg = Registry(tmp)
        info = reg.save(result.booster_json, result.meta, dt.datetime.now(dt.UTC))
        reg.promote(info.version, dt.datetime.now(dt.UTC))
        scorer = LiveScorer(tmp, min_conversions=0)
        assert scorer.model_scorer is not None
        states: dict[str, LeadState] = {}
        per_event: list[float] = []
        now = dt.datetime.now(dt.UTC)
        perf = time.perf_counter
        for event in data.events[: args.events]:
            lead = str(event.lead_id)
            state = states.get(lead) or states.setdefault(lead, LeadState(lead))
            start = perf()
            if apply_event(state, event):
                score = scorer.rescore(state, event, now)
                state.record_score(score)
            per_event.append(perf() - start)
        q = statistics.quantiles(per_event, n=100)
        trees = result.meta["trees"]
        print(f"model: {trees} trees, {len(result.meta['features'])} features, depth<=4")
        print(
            f"single-event rescoring (apply_event + rescore + record_score): "
            f"p50 {q[49] * 1e6:.0f} µs, p99 {q[98] * 1e6:.0f} µs over {len(per_event):,} events"
        )
        model = scorer.model_scorer.model
        x = model.vector(states[str(data.events[args.events - 1].lead_id)], now.timestamp())
        reps = 5000
        start = perf()
        for _ in range(reps):
            model.explain(x)
        print(f"tree walk + reasons alone: {(perf() - start) / reps * 1e6:.0f} µs")
    reference_size()
    print(
        f"replay: {len(data.events):,} events in {t_replay:.1f} s "
        f"({t_replay / len(data.events) * 1e5:.1f} s per 100k events)"
    )
    print(
        f"training: {n_train:,} snapshots in {t_train:.1f} s "
        f"({t_train / n_train * 1e5:.1f} s per 100k snapshots, incl. refit and calibration)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A worker's lead carries a score per promoted target that applies to it (churn,
cross-sell per product), each with its previous value, reasons and model version."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from nudge.events import LeadCreated, LeadEvent, LeadFields, LeadUpdated, PageViewed
from scoring.model_scorer import LiveScorer
from scoring.registry import Registry
from scoring.state import LeadState, apply_event
from scoring.synthetic_customers import CATALOGUE, generate_customers
from scoring.target_scorer import TargetScorer
from scoring.targets import Catalogue, target
from scoring.train import replay

NOW = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
CAT = Catalogue.model_validate(CATALOGUE)


def small_model(data_dir: Path, name: str, positives: int = 80) -> str:
    """A few shallow trees on replayed synthetic customers, saved and promoted for ``name``."""
    world = generate_customers(n=80, days=120, seed=2)
    snaps = replay(world.events, target=target(name, CAT))
    y = np.nan_to_num(snaps.labels(30 * 86400.0, snaps.data_end))
    booster = xgb.train(
        {"max_depth": 2, "objective": "binary:logistic", "base_score": 0.3},
        xgb.DMatrix(snaps.x, label=y, feature_names=None),
        num_boost_round=5,
    )
    registry = Registry(data_dir, name)
    info = registry.save(
        bytes(booster.save_raw("json")),
        {"features": snaps.names, "positives": positives, "target": name},
        NOW,
    )
    registry.promote(info.version, NOW)
    return info.version


def ev(kind: str, minutes: float, **kw: object) -> LeadEvent:
    at = T0 + dt.timedelta(minutes=minutes)
    common = {"event_id": f"e{minutes}", "occurred_at": at, "source": "crm", "lead_id": "C1"}
    if kind == "created":
        return LeadCreated(type="lead.created", fields=LeadFields(**kw), **common)  # type: ignore[arg-type]
    if kind == "updated":
        return LeadUpdated(type="lead.updated", fields=LeadFields(**kw), **common)  # type: ignore[arg-type]
    return PageViewed(type="page.viewed", path="/app", **common)  # type: ignore[arg-type]


def feed(scorer: LiveScorer, state: LeadState, event: LeadEvent) -> None:
    assert apply_event(state, event)
    state.record_score(scorer.rescore(state, event, event.occurred_at))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    data_dir = tmp_path_factory.mktemp("var")
    return data_dir, {n: small_model(data_dir, n) for n in ("churn", "cross_sell:payroll")}


def scorer(data_dir: Path, min_positives: int = 50) -> LiveScorer:
    targets = TargetScorer(data_dir, CAT, min_positives=min_positives, non_actionable=[])
    return LiveScorer(data_dir, min_conversions=50, non_actionable=[], targets=targets)


def test_a_customer_is_scored_for_each_promoted_target_it_can_still_answer(
    models: tuple[Path, dict[str, str]],
) -> None:
    data_dir, versions = models
    live, state = scorer(data_dir), LeadState("C1")
    feed(live, state, ev("created", 0, stage="customer", custom={"products": "insurance"}))
    # insurance is owned: its question is answered; it has no model anyway
    assert sorted(state.targets) == ["churn", "cross_sell:payroll"]
    assert "cross_sell:insurance" in state.closed
    first = state.targets["churn"]["score"]
    assert first["previous"] is None and first["model_version"] == versions["churn"]
    assert 0 < first["value"] < 1 and first["rule_based"] is False
    payroll = state.targets["cross_sell:payroll"]["score"]
    assert payroll["expected_value"] == pytest.approx(payroll["value"] * 12000, abs=0.01)
    feed(live, state, ev("view", 60))
    churn = state.targets["churn"]
    assert churn["score"]["previous"] == first["value"] and len(churn["history"]) == 2
    # the signal the playbooks see carries them
    signal = state.signal(ev("view", 61), live.score_at(state, T0), None)
    assert set(signal.targets) == {"churn", "cross_sell:payroll"}
    assert signal.targets["churn"].history[-1].value == churn["score"]["value"]
    # buying payroll answers that question; churning answers every one
    feed(
        live,
        state,
        ev("updated", 120, custom={"purchased": "payroll", "products": "insurance,payroll"}),
    )
    assert sorted(state.targets) == ["churn"]
    feed(live, state, ev("updated", 180, custom={"status": "churned"}))
    assert state.targets == {} and "churn" in state.closed
    feed(live, state, ev("view", 240))
    assert state.targets == {}
    # kept across the table's (de)serialisation
    assert LeadState.from_dict(state.to_dict()).closed == state.closed


def test_prospects_are_not_scored_and_too_little_history_scores_nothing(
    models: tuple[Path, dict[str, str]],
) -> None:
    data_dir, _ = models
    live, state = scorer(data_dir), LeadState("C1")
    feed(live, state, ev("created", 0, stage="discovery"))
    assert state.targets == {}
    untrusted = scorer(data_dir, min_positives=500)
    state = LeadState("C1")
    feed(untrusted, state, ev("created", 0, stage="customer"))
    assert state.targets == {}
    assert untrusted.targets is not None
    assert "500 are needed" in untrusted.targets.notes["churn"]


def test_a_batch_rescore_keeps_the_other_targets_as_one_by_one_does(
    models: tuple[Path, dict[str, str]],
) -> None:
    """The lead agent scores a micro-batch with ``rescore_batch``: the leads' churn and
    cross-sell scores are the ones ``rescore`` keeps, reasons and all."""
    data_dir, _versions = models
    live = scorer(data_dir)
    events = [
        ev("created", 0, stage="customer", custom={"products": "insurance"}),
        ev("view", 5),
        ev("view", 9),
    ]
    alone, batched = LeadState("C1"), LeadState("C1")
    for e in events:
        feed(live, alone, e)
        assert apply_event(batched, e)
        (score,) = live.rescore_batch([(batched, e)], e.occurred_at)
        batched.record_score(score)
    assert batched.targets == alone.targets and batched.targets

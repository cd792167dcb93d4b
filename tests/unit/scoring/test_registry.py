"""The registry and the live scorer's switch between points and model."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from nudge.errors import ConfigError
from scoring.model_scorer import LiveScorer
from scoring.registry import Registry
from scoring.state import LeadState, apply_event
from scoring.train import TrainResult

from .helpers import created, view

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def save(reg: Registry, result: TrainResult, positives: int | None = None) -> str:
    meta = dict(result.meta)
    if positives is not None:
        meta["positives"] = positives
    return reg.save(result.booster_json, meta, NOW).version


def test_promote_list_and_rollback(tmp_path: Path, small_world) -> None:  # type: ignore[no-untyped-def]
    """Promotion is recorded; rollback returns to the previous model, then to none."""
    reg = Registry(tmp_path)
    a, b = save(reg, small_world[2]), save(reg, small_world[2])
    assert [m.version for m in reg.list()] == sorted([a, b])
    reg.promote(a, NOW)
    reg.promote(b, NOW)
    assert reg.promoted_version() == b
    assert reg.rollback(NOW).version == a  # type: ignore[union-attr]
    assert reg.promoted_version() == a
    assert reg.rollback(NOW) is None
    assert reg.promoted_version() is None


def test_promoting_an_unknown_version_names_the_known_ones(tmp_path: Path, small_world) -> None:  # type: ignore[no-untyped-def]
    """A typo in `nudge model promote` is a ConfigError listing what exists."""
    reg = Registry(tmp_path)
    a = save(reg, small_world[2])
    with pytest.raises(ConfigError, match=a):
        reg.promote("m-typo", NOW)


def test_current_reports_a_change_once(tmp_path: Path, small_world) -> None:  # type: ignore[no-untyped-def]
    """A worker's cheap check says 'changed' once per promotion, not on every call."""
    reg, worker = Registry(tmp_path), Registry(tmp_path)
    assert worker.current() == (False, None)
    a = save(reg, small_world[2])
    reg.promote(a, NOW)
    assert worker.current() == (True, a)
    assert worker.current() == (False, a)


def lead() -> LeadState:
    state = LeadState("L")
    for e in [
        created("L", 0, industry="software", employees=50, deal_value=20000),
        view("L", 1, "/pricing"),
    ]:
        apply_event(state, e)
    return state


def test_cold_start_keeps_the_points_scorer(tmp_path: Path, small_world) -> None:  # type: ignore[no-untyped-def]
    """A promoted model trained on too few conversions is not used; scores say rule_based."""
    reg = Registry(tmp_path)
    reg.promote(save(reg, small_world[2], positives=10), NOW)
    scorer = LiveScorer(tmp_path, min_conversions=50)
    state = lead()
    score = scorer.rescore(state, view("L", 2), NOW)
    assert score.rule_based and score.model_version == "points-v1"
    assert "10 conversions" in scorer.note


def test_a_promotion_reaches_a_running_scorer_without_restart(tmp_path: Path, small_world) -> None:  # type: ignore[no-untyped-def]
    """After promote, the next check (driven by the injected clock) switches to the model."""
    clock = [0.0]
    scorer = LiveScorer(tmp_path, min_conversions=0, check_every=1.0, monotonic=lambda: clock[0])
    state = lead()
    assert scorer.rescore(state, view("L", 2), NOW).rule_based
    reg = Registry(tmp_path)
    version = save(reg, small_world[2])
    reg.promote(version, NOW)
    assert scorer.rescore(state, view("L", 3), NOW).rule_based  # not checked yet
    clock[0] = 1.5
    event = view("L", 4, "/pricing")
    apply_event(state, event)
    score = scorer.rescore(state, event, NOW)
    assert not score.rule_based and score.model_version == version


def test_rollback_walks_back_through_promotions(tmp_path: Path, small_world) -> None:  # type: ignore[no-untyped-def]
    """Three promotions, then rollbacks return c → b → a → none, never forward again."""
    reg = Registry(tmp_path)
    a, b, c = (save(reg, small_world[2]) for _ in range(3))
    for v in (a, b, c):
        reg.promote(v, NOW)
    assert reg.rollback(NOW).version == b  # type: ignore[union-attr]
    reg.promote(c, NOW)
    assert reg.rollback(NOW).version == b  # type: ignore[union-attr]
    assert reg.rollback(NOW).version == a  # type: ignore[union-attr]
    assert reg.rollback(NOW) is None and reg.promoted_version() is None
    assert reg.rollback(NOW) is None


def test_a_broken_promoted_model_does_not_stop_scoring(tmp_path: Path, small_world) -> None:  # type: ignore[no-untyped-def]
    """If the promoted model's files are corrupt, the scorer in use keeps scoring and says why."""
    clock = [0.0]
    reg = Registry(tmp_path)
    good = save(reg, small_world[2])
    reg.promote(good, NOW)
    scorer = LiveScorer(tmp_path, min_conversions=0, monotonic=lambda: clock[0])
    bad = save(reg, small_world[2])
    (reg.root / bad / "model.json").write_text("{not json")
    reg.promote(bad, NOW)
    clock[0] = 5.0
    state = lead()
    score = scorer.rescore(state, view("L", 2), NOW)
    assert score.model_version == good
    assert f"could not load model {bad}" in scorer.note


def test_points_stay_current_while_the_model_scores(tmp_path: Path, small_world) -> None:  # type: ignore[no-untyped-def]
    """After a rollback to no model, the points score counts events seen under the model."""
    clock = [0.0]
    reg = Registry(tmp_path)
    reg.promote(save(reg, small_world[2]), NOW)
    scorer = LiveScorer(tmp_path, min_conversions=0, monotonic=lambda: clock[0])
    state = lead()
    for h in (2, 3, 4):
        event = view("L", h, "/pricing")
        apply_event(state, event)
        assert not scorer.rescore(state, event, NOW).rule_based
    reg.rollback(NOW)
    clock[0] = 5.0
    event = view("L", 5, "/pricing")
    apply_event(state, event)
    score = scorer.rescore(state, event, NOW)
    assert score.rule_based
    assert "4 pricing-page visits" in score.reasons

"""Score signals for playbooks: changed, crossed, jumped."""

from __future__ import annotations

import datetime as dt

from nudge.signals import ScorePoint
from scoring.signals import changed, crossed, jumped

from .helpers import at


def points(*pairs: tuple[float, float]) -> list[ScorePoint]:
    return [ScorePoint(at=at(h), value=v) for h, v in pairs]


def test_crossed_up_down_and_either() -> None:
    """Crossing is strict on the way up (prev below, cur at or above) and down."""
    assert crossed(0.6, 0.7, 0.7, "up")
    assert not crossed(0.7, 0.8, 0.7, "up")
    assert crossed(0.75, 0.65, 0.7, "down")
    assert not crossed(0.6, 0.65, 0.7, "down")
    assert crossed(0.75, 0.65, 0.7, "either") and crossed(0.65, 0.75, 0.7, "either")


def test_first_score_counts_as_coming_from_zero() -> None:
    """A lead whose first score is already hot crosses the threshold."""
    assert crossed(None, 0.9, 0.7)
    assert not crossed(None, 0.5, 0.7)


def test_jumped_within_the_window_only() -> None:
    """A rise of Δ counts only against scores inside the window."""
    history = points((0, 0.1), (30, 0.3), (40, 0.6))
    assert jumped(history, 0.3, dt.timedelta(hours=12))
    assert not jumped(history, 0.4, dt.timedelta(hours=12))  # 0.1 is 40 h old
    assert jumped(history, 0.5, dt.timedelta(hours=48))


def test_negative_delta_detects_a_drop() -> None:
    """A negative Δ asks whether the score fell that far below the window's highest."""
    history = points((0, 0.8), (5, 0.5))
    assert jumped(history, -0.3, dt.timedelta(hours=6))
    assert not jumped(history, -0.4, dt.timedelta(hours=6))
    assert not jumped(points((0, 0.8)), 0.1, dt.timedelta(hours=6))


def test_changed_ignores_noise() -> None:
    """Moves below min_delta are not changes; a first score is."""
    assert changed(None, 0.2)
    assert not changed(0.2, 0.205)
    assert changed(0.2, 0.25)

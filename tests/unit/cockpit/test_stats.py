"""The cockpit's statistics against generated data whose answer is known."""

from __future__ import annotations

import random

from cockpit.stats import Unit, ips_lift, median, roc_auc, wilson


def exploration_log(n: int, effect: float, seed: int) -> list[Unit]:
    """Leads whose conditions failed; the coin nudges the warmer ones more often
    (propensity 0.4 against 0.1) and warm leads convert more anyway, so a plain
    difference of means over-states the effect while IPS should not."""
    rng = random.Random(seed)
    units = []
    for _ in range(n):
        warm = rng.random() < 0.5
        p = 0.4 if warm else 0.1
        treated = rng.random() < p
        base = 0.30 if warm else 0.10
        converted = rng.random() < base + (effect if treated else 0.0)
        units.append(Unit(treated, p, 1.0 if converted else 0.0))
    return units


def test_ips_lift_recovers_a_known_effect_where_the_naive_difference_does_not() -> None:
    """A rule that raises conversion by 8 points: the interval holds 0.08 and excludes 0,
    while the unweighted difference is biased well above it."""
    units = exploration_log(40_000, 0.08, seed=3)
    lift = ips_lift(units)
    assert lift is not None
    assert lift.low < 0.08 < lift.high
    assert lift.low > 0
    assert abs(lift.lift - 0.08) < 0.02
    treated = [u.outcome for u in units if u.treated]
    control = [u.outcome for u in units if not u.treated]
    naive = sum(treated) / len(treated) - sum(control) / len(control)
    assert naive > 0.12  # confounded by who gets explored


def test_ips_lift_of_a_useless_rule_straddles_zero() -> None:
    """With no effect the 95 % interval covers 0 (this seed; ~95 % of seeds would)."""
    lift = ips_lift(exploration_log(20_000, 0.0, seed=11))
    assert lift is not None
    assert lift.low < 0 < lift.high


def test_interval_covers_the_truth_about_95_percent_of_the_time() -> None:
    """Coverage over 200 independent logs is between 89 % and 99 %."""
    hits = 0
    for seed in range(200):
        lift = ips_lift(exploration_log(2_000, 0.05, seed=seed))
        assert lift is not None
        hits += lift.low <= 0.05 <= lift.high
    assert 178 <= hits <= 198


def test_ips_lift_needs_both_arms_and_skips_certain_decisions() -> None:
    """Propensity 1 (conditions held) carries no control; with no control there is no lift."""
    assert ips_lift([Unit(True, 1.0, 1.0), Unit(True, 0.2, 0.0)]) is None
    lift = ips_lift([Unit(True, 1.0, 1.0), Unit(True, 0.5, 1.0), Unit(False, 0.5, 0.0)])
    assert lift is not None and lift.skipped == 1 and lift.lift == 1.0


def test_roc_auc_matches_the_pairwise_definition_with_ties() -> None:
    """AUC = share of (positive, negative) pairs ordered right, ties counting half."""
    labels = [1, 0, 1, 0, 1, 0, 0]
    scores = [0.9, 0.9, 0.5, 0.4, 0.2, 0.2, 0.1]
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    pairs = [(s, t) for s in pos for t in neg]
    expected = sum(1.0 if s > t else 0.5 if s == t else 0.0 for s, t in pairs) / len(pairs)
    assert roc_auc(labels, scores) == expected
    assert roc_auc([1, 1], [0.2, 0.3]) is None


def test_wilson_and_median() -> None:
    """Wilson's interval stays inside [0, 1] and brackets k/n; median of even and odd lists."""
    low, high = wilson(0, 10) or (None, None)
    assert low == 0.0 and high is not None and 0.2 < high < 0.35
    low, high = wilson(30, 100) or (0.0, 0.0)
    assert low < 0.3 < high
    assert wilson(1, 0) is None
    assert median([3.0, 1.0, 2.0]) == 2.0 and median([4.0, 1.0]) == 2.5 and median([]) is None

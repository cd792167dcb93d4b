"""The cockpit's statistics, as pure functions of plain numbers.

Why its own module: these figures decide whether a manager keeps a playbook, so they
are tested on generated data with a known answer (``tests/unit/cockpit/test_stats.py``),
with no store, no server and no clock.

**Lift against the exploration control.** A rule with ``explore: p`` nudges a lead
whose trigger matched but whose conditions did not with probability ``p`` (a logged
coin), and leaves it alone otherwise: the leads left alone are the control. Each such
decision is a :class:`Unit` — treated or not, the probability it had of being treated,
and the outcome (converted within the horizon). The lift is the difference of the two
inverse-propensity weighted means, in the self-normalised (Hájek) form, which stays
within [0, 1] per arm and varies less than the plain Horvitz–Thompson ratio when
propensities differ between leads. Its standard error comes from the estimator's
influence function (a first-order linearisation), so the interval is
``lift ± z·se``. Decisions whose propensity is 0 or 1 carry no information about the
other arm and are left out (reported as ``skipped``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Unit:
    """One logged decision: nudged or not, P(nudged) at that moment, and the outcome."""

    treated: bool
    propensity: float
    outcome: float


@dataclass(frozen=True)
class Lift:
    """The weighted outcome rate of each arm, their difference and its interval."""

    treated_rate: float
    control_rate: float
    lift: float
    low: float
    high: float
    n_treated: int
    n_control: int
    skipped: int


def ips_lift(units: Sequence[Unit], z: float = 1.96) -> Lift | None:
    """The IPS-weighted (Hájek) lift of treatment over control with a ``z`` interval,
    or None when either arm is empty."""
    usable = [u for u in units if 0.0 < u.propensity < 1.0]
    n = len(usable)
    w1 = [1.0 / u.propensity if u.treated else 0.0 for u in usable]
    w0 = [0.0 if u.treated else 1.0 / (1.0 - u.propensity) for u in usable]
    s1, s0 = sum(w1), sum(w0)
    if n == 0 or s1 == 0 or s0 == 0:
        return None
    mu1 = sum(w * u.outcome for w, u in zip(w1, usable, strict=True)) / s1
    mu0 = sum(w * u.outcome for w, u in zip(w0, usable, strict=True)) / s0
    m1, m0 = s1 / n, s0 / n
    psi = [
        a * (u.outcome - mu1) / m1 - b * (u.outcome - mu0) / m0
        for a, b, u in zip(w1, w0, usable, strict=True)
    ]
    se = math.sqrt(sum(p * p for p in psi)) / n
    lift = mu1 - mu0
    return Lift(
        treated_rate=mu1,
        control_rate=mu0,
        lift=lift,
        low=lift - z * se,
        high=lift + z * se,
        n_treated=sum(1 for u in usable if u.treated),
        n_control=sum(1 for u in usable if not u.treated),
        skipped=len(units) - n,
    )


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score interval of a proportion ``k / n`` (None when ``n`` is 0)."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve (ties count half): the chance that a random positive
    outscores a random negative. None when one class is missing."""
    pairs = sorted(zip(scores, labels, strict=True))
    pos = sum(1 for _, y in pairs if y)
    neg = len(pairs) - pos
    if pos == 0 or neg == 0:
        return None
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mean_rank = (i + 1 + j) / 2  # ranks i+1 .. j share their average
        rank_sum += mean_rank * sum(1 for _, y in pairs[i:j] if y)
        i = j
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)

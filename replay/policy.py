"""Off-policy evaluation: what a playbook would have achieved, from the decisions logged
under another one — inverse propensity scoring (IPS) and doubly robust (DR).

Every decision a rule makes — nudge or not, once its trigger matched or was explored — is
logged with its *propensity*: how likely the rule as written was to decide what it did
(1 unless an exploration coin was drawn: ``explore`` on conditions, ``explore_trigger``
on the trigger; see :func:`playbooks.evaluator.decide`). Each logged decision gets a
reward: 1 if the lead converted within the horizon after it, else 0 (``--target``: bought
the product, or for churn stayed).

For a candidate playbook, each logged signal is evaluated again: does the candidate
nudge? Where it agrees with what was logged, the reward counts, weighted by 1/propensity:

* IPS: ``mean(1[a = π(x)] / p · r)`` — unbiased when every action the candidate takes
  had a chance under the logging rules (exploration is what gives it one);
* DR: ``mean(q(x, π(x)) + 1[a = π(x)] / p · (r − q(x, a)))`` with an outcome model ``q``
  (a logistic regression of the reward on the target's score, per action): unbiased
  if either the propensities or ``q`` are right, and less noisy than IPS.

Decisions where the candidate takes an action the logging rules never took (propensity
0) cannot be weighed: they are counted and reported as ``unsupported``.

Why not compare conversion rates of nudged and not-nudged leads: the rules nudge the
leads already most likely to convert, so that comparison credits the nudge with the
selection. The propensities undo the selection.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from nudge.events import LeadEvent
from nudge.signals import LeadSignal, NudgeCommand
from playbooks.decisions import Logged
from playbooks.evaluator import decide
from playbooks.model import Playbook
from scoring.targets import CHURN, CONVERSION, Target


def nudges(signal: LeadSignal, playbooks: list[Playbook]) -> bool:
    """Would ``playbooks`` nudge on this signal (fresh guard state: no cooldown)?"""
    commands = decide(signal, playbooks, signal.at).commands
    return any(isinstance(c, NudgeCommand) for c in commands)


def rewards(
    logged: list[Logged],
    events: Iterable[LeadEvent],
    horizon: dt.timedelta,
    target: Target | None = None,
) -> np.ndarray:
    """Per decision, 1 if it went well within ``horizon`` after it, else 0: the lead
    converted (``conversion``, the default), bought the product (``cross_sell:<product>``),
    or — for ``churn`` — the customer did *not* leave."""
    tgt = target or Target(CONVERSION)
    first: dict[str, float] = {}
    for e in events:
        if e.lead_id and tgt.outcome(e) == "won":
            first[e.lead_id] = min(first.get(e.lead_id, math.inf), e.occurred_at.timestamp())
    h = horizon.total_seconds()
    out = np.zeros(len(logged))
    for i, d in enumerate(logged):
        t = d.signal.at.timestamp()
        w = first.get(d.signal.lead.lead_id)
        happened = w is not None and t < w <= t + h
        out[i] = float(happened != (tgt.name == CHURN))
    return out


def score_of(signal: LeadSignal, target: str) -> float:
    """The lead's score for ``target`` on the signal (conversion's when it has none)."""
    found = signal.targets.get(target)
    return found.score.value if found else signal.score.value


def _logistic(x: np.ndarray, y: np.ndarray, iters: int = 25, ridge: float = 1e-3) -> np.ndarray:
    """Coefficients of P(y=1) = sigmoid(b0 + b1 x) by Newton steps (a small ridge keeps it
    finite when one side is all 0 or all 1)."""
    X = np.column_stack([np.ones_like(x), x])
    beta = np.zeros(2)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(X @ beta)))
        grad = X.T @ (y - p) - ridge * beta
        hess = (X * (p * (1 - p))[:, None]).T @ X + ridge * np.eye(2)
        beta = beta + np.linalg.solve(hess, grad)
    return beta


def outcome_model(x: np.ndarray, a: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """q(x, 0) and q(x, 1) for every decision: a logistic regression of the reward on the
    score, fitted per action (the action's mean where it has too few decisions)."""
    out = []
    for action in (False, True):
        mine = a == action
        if mine.sum() >= 20 and 0 < r[mine].mean() < 1:
            b = _logistic(x[mine], r[mine])
            out.append(1 / (1 + np.exp(-(b[0] + b[1] * x))))
        else:
            mean = float(r[mine].mean()) if mine.any() else float(r.mean())
            out.append(np.full(len(x), mean))
    return out[0], out[1]


def estimate(
    a: np.ndarray, p: np.ndarray, r: np.ndarray, t: np.ndarray, x: np.ndarray
) -> dict[str, Any]:
    """IPS, self-normalised IPS and DR value of the target actions ``t``, beside the
    logged policy's own value and the naive (unweighted) estimate, with bootstrap 95 %
    intervals for IPS and DR."""
    n = len(a)
    if n == 0:
        raise ValueError("no logged decisions")
    match = a == t
    w = np.where(match, 1.0 / p, 0.0)
    q0, q1 = outcome_model(x, a, r)
    q_t, q_a = np.where(t, q1, q0), np.where(a, q1, q0)
    ips_terms = w * r
    dr_terms = q_t + w * (r - q_a)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, n, (500, n))
    ips_boot, dr_boot = ips_terms[idx].mean(axis=1), dr_terms[idx].mean(axis=1)
    return {
        "decisions": n,
        "agree": int(match.sum()),
        "candidate_nudges": int(t.sum()),
        "logged_nudges": int(a.sum()),
        "logged_value": round(float(r.mean()), 4),
        "naive": round(float(r[match].mean()), 4) if match.any() else None,
        "ips": round(float(ips_terms.mean()), 4),
        "ips_95": [round(float(v), 4) for v in np.percentile(ips_boot, [2.5, 97.5])],
        "snips": round(float(ips_terms.sum() / w.sum()), 4) if w.sum() else None,
        "dr": round(float(dr_terms.mean()), 4),
        "dr_95": [round(float(v), 4) for v in np.percentile(dr_boot, [2.5, 97.5])],
    }


def evaluate_policy(
    logged: list[Logged], candidate: list[Playbook], r: np.ndarray, target: str = CONVERSION
) -> dict[str, Any]:
    """The candidate playbooks' value on the logged decisions (see :func:`estimate`).

    One decision per signal: a signal several logged rules decided on counts once, nudged
    if any of them nudged, with the product of their propensities."""
    by_signal: dict[str, tuple[Logged, bool, float, float]] = {}
    for d, reward in zip(logged, r, strict=True):
        key = d.signal.event_id + "\x1f" + d.signal.lead.lead_id
        seen = by_signal.get(key)
        if seen is None:
            by_signal[key] = (d, d.nudged, d.propensity, float(reward))
        else:
            by_signal[key] = (seen[0], seen[1] or d.nudged, seen[2] * d.propensity, seen[3])
    rows = list(by_signal.values())
    a = np.asarray([row[1] for row in rows])
    p = np.asarray([row[2] for row in rows])
    rr = np.asarray([row[3] for row in rows])
    x = np.asarray([score_of(row[0].signal, target) for row in rows])
    t = np.asarray([nudges(row[0].signal, candidate) for row in rows])
    result = estimate(a, p, rr, t, x)
    # the candidate does what the logging rules could not have done: no weight can say
    # what would have happened there, and IPS counts those decisions as 0
    result["unsupported"] = int(((a != t) & (p >= 1.0)).sum())
    result["rules"] = sorted({f"{d.playbook}/{d.rule}" for d in logged})
    return result

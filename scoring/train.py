"""Point-in-time training from replayed events: snapshots, labels, weights, fit.

Why replay: the features a model trains on must be exactly the ones the live scorer
will compute, as they were at the moment of scoring. So training feeds the event history
(a CRM export, or the activity log) in time order through :func:`scoring.state.apply_event`
— the same call the lead agent makes — and snapshots the feature vector after every
event. Nothing that happened later can leak into a snapshot's features.

Labels: a snapshot at time t is positive if the lead converted (``deal.won``, or a stage
change to a won stage) within ``horizon`` after t; negative if it was lost or the
horizon passed without a conversion; and *unlabelled* (dropped) if, at the time the
label is read, the horizon has not passed yet. Labels are read "as of" a moment:
training snapshots are labelled with what was known at the validation cut, validation
snapshots with what is known at the end of the data. Snapshots after a lead's outcome
are not taken (a closed lead is not scored).

Censoring, window and split: a snapshot's label is complete only once its horizon is
over, so only snapshots at least one horizon older than the data (``data_end - horizon``)
are used to calibrate and to measure. Labelling the recent ones too, as far as they are
known, keeps exactly the leads that closed early, a sample with the wrong positive rate
(measured before this rule: 29 % of snapshots labelled, 40 % positive against 27 % in
the population, every decile over-predicted, a Brier score worse than the constant
guess). ``train`` prints that labelled share. Only the last ``window_days`` of snapshots
are used (a sliding window keeps the model current). Of the labelled period, the first
half trains the trees (labelled with what was known at its end, so nothing from the
later slices leaks in; its skewed positive share is absorbed by ``scale_pos_weight``),
the next 35 % drives early stopping and the Platt calibration, and the last 15 % is the
holdout the reported metrics come from. The trees are not refitted on the later slices
(a refit moved the calibrated mean by 3-6 points on generated worlds); the stored
calibration is refitted on both later slices together (twice the leads: on generated
worlds the top decile's promise went from ~7 to within 5 points of what happened),
while the holdout figures use the validation-only one.

Feedback loop: nudges change reps' behaviour and so the next training set. Each
:class:`nudge.signals.NudgeCommand` records whether it was exploration and its
propensity (the probability the policy had of sending it). A snapshot taken while a
nudge was in effect (within ``horizon`` of it) is weighted 1/propensity (clipped at
``MAX_IPW``): the rare exploration nudges to lower-scored leads count as much as the
many they stand for, so the model keeps learning what happens to leads it would not
have picked, instead of only confirming its own past choices.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np
import xgboost as xgb

from nudge.events import DealLost, DealStageChanged, DealWon, LeadEvent
from nudge.signals import NudgeCommand
from scoring.features import compile_extractors, discover_names, feature_vector
from scoring.learn import calibrate, fit, metrics
from scoring.reliability import format_honesty, honesty
from scoring.state import LeadState, apply_event
from scoring.targets import Target

EVENT_PARAMS = {"max_depth": 4, "min_child_weight": 100, "colsample_bytree": 0.5}
"""Snapshots of one lead are strongly correlated and share one label; with unique
per-lead values (deal value, size) deep, fine-grained trees memorise leads (train AUC
0.99, validation falling from the first trees). Shallow trees with large leaves do not."""

WON_STAGES = frozenset({"won", "closed won", "closed-won", "closed_won", "converted"})
MAX_IPW = 20.0
PROFILE_TYPES = frozenset({"lead.created", "lead.updated", "deal.stage_changed"})
"""The events that can set a categorical field or a custom answer."""


@dataclass
class Snapshots:
    """Feature vectors taken during a replay, with what is needed to label them."""

    names: list[str]
    x: np.ndarray
    t: np.ndarray
    lead: list[str]
    weight: np.ndarray
    converted_at: dict[str, float] = field(default_factory=dict)
    closed_at: dict[str, float] = field(default_factory=dict)
    data_end: float = 0.0

    def labels(self, horizon_s: float, known_at: float) -> np.ndarray:
        """1 / 0 per snapshot, NaN where the outcome was not yet known at ``known_at``."""
        out = np.full(len(self.t), np.nan)
        for i, (t, lead) in enumerate(zip(self.t, self.lead, strict=True)):
            end = t + horizon_s
            conv = self.converted_at.get(lead, math.inf)
            closed = self.closed_at.get(lead, math.inf)
            if conv <= min(end, known_at):
                out[i] = 1.0
            elif closed <= min(end, known_at) or end <= known_at:
                out[i] = 0.0
        return out


Taken = tuple[list[float], float, str, float]
"""One snapshot as it is taken: feature vector, time, lead, weight."""


def _snapshots(
    names: list[str],
    taken: list[Taken],
    converted: dict[str, float],
    closed: dict[str, float],
    data_end: float,
) -> Snapshots:
    return Snapshots(
        names=names,
        x=np.asarray([r[0] for r in taken], dtype=np.float32).reshape(len(taken), len(names)),
        t=np.asarray([r[1] for r in taken]),
        lead=[r[2] for r in taken],
        weight=np.asarray([r[3] for r in taken]),
        converted_at=converted,
        closed_at=closed,
        data_end=data_end,
    )


def outcome_time(event: LeadEvent) -> tuple[str, float] | None:
    """('won'|'lost', epoch) if the event is an outcome."""
    t = event.occurred_at.timestamp()
    if isinstance(event, DealWon):
        return "won", t
    if isinstance(event, DealLost):
        return "lost", t
    if isinstance(event, DealStageChanged) and event.to_stage.strip().lower() in WON_STAGES:
        return "won", t
    return None


def replay(
    events: Iterable[LeadEvent],
    nudges: Iterable[NudgeCommand] = (),
    *,
    horizon: dt.timedelta = dt.timedelta(days=30),
    names: list[str] | None = None,
    progress: TextIO | None = None,
    target: Target | None = None,
) -> Snapshots:
    """Replay events in time order through the live feature code and snapshot each one.

    Events without a ``lead_id`` are skipped: identity resolution happens in the ingest
    agent, so a history to train on must carry resolved lead ids (as ``lead.activity``
    and the CRM activity log do).
    """
    ordered = sorted((e for e in events if e.lead_id), key=lambda e: (e.occurred_at, e.event_id))
    outcome_of = outcome_time if target is None else _timed(target)
    converted: dict[str, float] = {}
    closed: dict[str, float] = {}
    for event in ordered:
        outcome = outcome_of(event)
        if outcome and event.lead_id not in closed:
            closed[event.lead_id] = outcome[1]  # type: ignore[index]
            if outcome[0] == "won":
                converted[event.lead_id] = outcome[1]  # type: ignore[index]
    if names is None:  # a first pass only to learn categorical levels and custom answers
        profiles: dict[str, LeadState] = {}
        for event in ordered:
            if event.type in PROFILE_TYPES:
                lead_id = str(event.lead_id)
                apply_event(profiles.setdefault(lead_id, LeadState(lead_id)), event)
        names = discover_names(s.profile for s in profiles.values())
    extractors = compile_extractors(names)
    nudge_times = _nudge_times(nudges)
    horizon_s = horizon.total_seconds()
    states: dict[str, LeadState] = {}
    taken: list[Taken] = []
    started = time.perf_counter()
    for i, event in enumerate(ordered):
        lead_id = str(event.lead_id)
        state = states.get(lead_id)
        if state is None:
            state = states[lead_id] = LeadState(lead_id)
        if not apply_event(state, event):
            continue
        t = event.occurred_at.timestamp()
        if outcome_of(event) or closed.get(lead_id, math.inf) <= t:
            continue
        vector = feature_vector(state.features, state.profile, extractors, t)
        taken.append((vector, t, lead_id, _ipw(nudge_times.get(lead_id), t, horizon_s)))
        if progress and i and i % 100_000 == 0:
            rate = i / (time.perf_counter() - started)
            print(f"replayed {i:,} of {len(ordered):,} events ({rate:,.0f}/s)", file=progress)
    data_end = ordered[-1].occurred_at.timestamp() if ordered else 0.0
    return _snapshots(names, taken, converted, closed, data_end)


def _timed(target: Target) -> Callable[[LeadEvent], tuple[str, float] | None]:
    def outcome(event: LeadEvent) -> tuple[str, float] | None:
        kind = target.outcome(event)
        return (kind, event.occurred_at.timestamp()) if kind else None

    return outcome


def _nudge_times(nudges: Iterable[NudgeCommand]) -> dict[str, list[tuple[float, float]]]:
    """lead_id → (sent at, propensity) of each nudge about it, oldest first (for IPW)."""
    out: dict[str, list[tuple[float, float]]] = {}
    for n in nudges:
        out.setdefault(n.lead_id, []).append((n.created_at.timestamp(), n.propensity))
    for lst in out.values():
        lst.sort()
    return out


def _ipw(nudged: list[tuple[float, float]] | None, t: float, horizon_s: float) -> float:
    """1/propensity of the latest nudge in effect at ``t`` (within the horizon), else 1."""
    if not nudged:
        return 1.0
    i = bisect.bisect_right(nudged, (t, math.inf)) - 1
    if i < 0 or t - nudged[i][0] > horizon_s:
        return 1.0
    return min(1.0 / nudged[i][1], MAX_IPW)


def _per_lead(snaps: Snapshots, mask: np.ndarray) -> np.ndarray:
    """Weights giving every lead the same total weight (mean 1): a lead with 200 events
    must not count 200 times as much as a lead with one."""
    leads = [lead for lead, m in zip(snaps.lead, mask, strict=True) if m]
    counts: dict[str, int] = {}
    for lead in leads:
        counts[lead] = counts.get(lead, 0) + 1
    w = np.asarray([1.0 / counts[lead] for lead in leads])
    return w * (len(w) / w.sum()) if len(w) else w


def snapshots_from_rows(
    rows: Iterable[dict[str, Any]],
    nudges: Iterable[NudgeCommand] = (),
    *,
    horizon: dt.timedelta = dt.timedelta(days=30),
    names: list[str] | None = None,
) -> Snapshots:
    """Snapshots from what live scoring recorded (``scoring.state.snapshot_row``).

    The same vectors as :func:`replay` gives for the same events — each row holds the
    feature state exactly as it was after its event — labelled from the outcome rows
    (won, lost, a won stage) the same way.
    """
    ordered = sorted(rows, key=lambda r: (r["occurred_at"], r["event_id"]))
    converted: dict[str, float] = {}
    closed: dict[str, float] = {}
    last_profile: dict[str, dict[str, Any]] = {}
    outcome_rows: set[str] = set()
    for row in ordered:
        lead, t, kind = row["lead_id"], float(row["occurred_at"]), row["event_type"]
        profile = row["state_json"].get("profile", {})
        last_profile[lead] = profile
        stage = str(profile.get("stage", "")).strip().lower()
        won = kind == "deal.won" or (kind == "deal.stage_changed" and stage in WON_STAGES)
        if won or kind == "deal.lost":
            outcome_rows.add(row["event_id"])
            if lead not in closed:
                closed[lead] = t
                if won:
                    converted[lead] = t
    names = names if names is not None else discover_names(last_profile.values())
    extractors = compile_extractors(names)
    nudge_times = _nudge_times(nudges)
    horizon_s = horizon.total_seconds()
    taken: list[Taken] = []
    for row in ordered:
        lead, t = row["lead_id"], float(row["occurred_at"])
        if row["event_id"] in outcome_rows or closed.get(lead, math.inf) <= t:
            continue
        state = row["state_json"]
        vector = feature_vector(state.get("features", {}), state.get("profile", {}), extractors, t)
        taken.append((vector, t, lead, _ipw(nudge_times.get(lead), t, horizon_s)))
    data_end = float(ordered[-1]["occurred_at"]) if ordered else 0.0
    return _snapshots(names, taken, converted, closed, data_end)


@dataclass
class TrainResult:
    booster_json: bytes
    meta: dict[str, Any]


TruthFn = Callable[[str, float], float]
"""(lead_id, epoch) → the true probability of the label, when the data is generated."""


def train(
    snaps: Snapshots,
    *,
    horizon: dt.timedelta = dt.timedelta(days=30),
    window: dt.timedelta = dt.timedelta(days=180),
    now: dt.datetime,
    progress: TextIO | None = sys.stderr,
    truth: TruthFn | None = None,
    target: str = "conversion",
) -> TrainResult:
    """Fit, calibrate and measure a model on the snapshots' sliding window.

    Censoring: only snapshots at least one horizon older than the data carry a complete
    label (their horizon is over, converted or not). The validation (calibration) and
    holdout slices are cut from those alone, so their positive rate is the population's;
    see the module docstring for the training slice.
    """
    started = time.perf_counter()
    h = horizon.total_seconds()
    end = snaps.data_end
    label_end = end - h
    in_window = snaps.t >= end - window.total_seconds()
    t = snaps.t[in_window]
    complete = in_window & (snaps.t <= label_end)
    days = h / 86400
    if int(complete.sum()) < 50:
        raise ValueError(
            f"only {int(complete.sum())} snapshots in the window are at least one horizon "
            f"({days:g} days) older than the data, so few outcomes are known; need at least 50 "
            "(more history, a wider window or a shorter horizon)"
        )
    t0 = float(t.min())
    span = label_end - t0
    cut, cut2 = t0 + 0.5 * span, t0 + 0.85 * span
    y_train_all = snaps.labels(h, known_at=cut)
    y_all = snaps.labels(h, known_at=end)
    base = in_window & ~np.isnan(y_train_all) & (snaps.t < cut)
    val_a = complete & (snaps.t >= cut) & (snaps.t < cut2)
    val_b = complete & (snaps.t >= cut2)
    if val_b.sum() == 0 or len(np.unique(y_all[val_a])) < 2:
        raise ValueError(
            "the validation period has no labelled outcomes of both kinds; "
            "widen the window or wait for more outcomes"
        )
    if len(np.unique(y_train_all[base])) < 2:
        raise ValueError("the training period has no outcomes of both kinds; widen the window")
    fitted = fit(
        snaps.x[base],
        y_train_all[base],
        snaps.x[val_a],
        y_all[val_a],
        w_train=_per_lead(snaps, base) * snaps.weight[base],
        w_val=snaps.weight[val_a],
        names=snaps.names,
        params=EVENT_PARAMS,
        refit=False,
        calibration="platt",
    )
    # the stored calibration is fitted again on both labelled slices after the training
    # one (the trees stay): twice the leads, half the variance at the top of the scale.
    # The holdout figures below use the validation-only calibration, so they stay honest.
    after = val_a | val_b
    margins_after = fitted.booster.predict(
        xgb.DMatrix(snaps.x[after], missing=np.nan),
        output_margin=True,
        iteration_range=(0, fitted.best_iteration + 1),
    ).astype(np.float64)
    final_calibration = calibrate(margins_after, y_all[after], snaps.weight[after], "platt")
    y_hold = y_all[val_b]
    p_hold = fitted.predict(snaps.x[val_b])
    hold_leads = [lead for lead, m in zip(snaps.lead, val_b, strict=True) if m]
    holdout = metrics(y_hold, p_hold)
    checks = honesty(y_hold, p_hold, hold_leads)
    truth_checks = None
    if truth is not None:
        p_true = np.asarray(
            [truth(lead, float(ti)) for lead, ti in zip(hold_leads, snaps.t[val_b], strict=True)]
        )
        truth_checks = honesty(y_hold, p_true, hold_leads)
    positive_snapshots = int(y_train_all[base].sum() + y_all[val_a].sum())
    positives = len(
        {lead for lead, m, y in zip(snaps.lead, base, y_train_all, strict=True) if m and y == 1}
        | {lead for lead, m, y in zip(snaps.lead, val_a, y_all, strict=True) if m and y == 1}
    )
    labelled_share = float(complete.sum()) / max(1, int(in_window.sum()))
    seconds = time.perf_counter() - started
    if progress:
        print(
            f"labelled share: {labelled_share:.0%} of the window's {int(in_window.sum()):,} "
            f"snapshots are at least one horizon ({days:g} days) old, with a complete label; "
            f"calibration and holdout use only those",
            file=progress,
        )
        print(
            f"{target}: trained on {int(base.sum()):,} snapshots ({positives} positive leads), "
            f"{fitted.best_iteration + 1} trees, {seconds:.1f} s",
            file=progress,
        )
        print(format_honesty("holdout", checks, truth_checks), file=progress)

    def iso(x: float) -> str:
        return dt.datetime.fromtimestamp(x, dt.UTC).isoformat()

    measured: dict[str, Any] = {"holdout": holdout, "holdout_checks": checks}
    if truth_checks is not None:
        measured["ground_truth"] = truth_checks
    meta = {
        "target": target,
        "features": snaps.names,
        "metrics": measured,
        "positives": positives,
        "positive_snapshots": positive_snapshots,
        "labelled_share": round(labelled_share, 4),
        "snapshots": {
            "train": int(base.sum()),
            "validation": int(val_a.sum()),
            "holdout": int(val_b.sum()),
        },
        "window": {
            "start": iso(t0),
            "validation_from": iso(cut),
            "holdout_from": iso(cut2),
            "labelled_until": iso(label_end),
            "end": iso(end),
        },
        "horizon_days": horizon.total_seconds() / 86400,
        "trained_at": now.isoformat(),
        "training_seconds": round(seconds, 2),
        "trees": fitted.best_iteration + 1,
        "scale_pos_weight": round(fitted.scale_pos_weight, 4),
        "calibration": final_calibration,
        "calibration_validation_only": fitted.calibration,
        "importance": dict(sorted(fitted.importance.items(), key=lambda kv: -kv[1])[:30]),
        "ipw_weighted_snapshots": int((snaps.weight[base] != 1.0).sum()),
    }
    return TrainResult(bytes(fitted.booster.save_raw("json")), meta)

"""The data inventory: what kinds of data Nudge has, and how far ahead each predicts.

For an event history (the same NDJSON ``nudge model train --events`` reads) it counts,
per event type and per intent silo (``nudge.events.SILO``): events, leads covered, first
and last seen. Then, per silo, it asks how well that silo's features *alone* rank leads
for "converts within N days" for N in :data:`HORIZONS_DAYS`.

How the horizon figures are made: at dated cut-offs (every ``step``), every lead that
exists (since its ``lead.created``, else its first event) and has not yet closed is a row; its features are that silo's event counts in the
last 1, 7 and 30 days and the days since its last such event (capped at 30) — only
events at or before the cut-off. Its label is "won within N days after the cut-off"; a row whose
window runs past the end of the data without an outcome is left out (censored, not
counted as a loss). A logistic regression on those features is scored out of fold
(folds by lead, so a lead is never judged by a model that saw it) and the ROC AUC of
those scores is the silo's figure: 0.5 is a coin; ``None`` means too few outcomes of
one kind to say.

A silo whose events come just before a purchase (calls in the last days, say) shows a
high AUC at 1 day falling towards 0.5 at 90 days; profile-like signals stay flat.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from nudge.events import SILO, LeadEvent
from scoring.train import outcome_time

HORIZONS_DAYS = (1, 7, 30, 90)
MIN_CLASS = 10
"""Fewest positives (and negatives) a horizon needs before an AUC is reported."""
DAY = 86400.0


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat()


Record = tuple[str, str, float, str | None]
"""One event as the inventory needs it: (lead_id, type, epoch seconds, "won"/"lost"/None)."""


def inventory(
    events: Iterable[LeadEvent],
    *,
    step: dt.timedelta = dt.timedelta(days=7),
    folds: int = 3,
) -> dict[str, Any]:
    """Counts per event type and silo, and each silo's ROC AUC by horizon (see module)."""
    records: list[Record] = []
    for e in sorted((e for e in events if e.lead_id), key=lambda e: (e.occurred_at, e.event_id)):
        outcome = outcome_time(e)
        records.append(
            (str(e.lead_id), e.type, e.occurred_at.timestamp(), outcome[0] if outcome else None)
        )
    return inventory_of(records, step=step, folds=folds)


def from_snapshots(rows: Iterable[dict[str, Any]]) -> list[Record]:
    """Records from the score snapshots the workers keep (one per scored event): the
    record's own history, when no event export is at hand. Outcomes are ``deal.won`` and
    ``deal.lost`` (a stage change to a won stage is not visible in a snapshot's type)."""
    out: list[Record] = []
    for r in rows:
        kind = str(r["event_type"])
        if kind in SILO:
            outcome = {"deal.won": "won", "deal.lost": "lost"}.get(kind)
            out.append((str(r["lead_id"]), kind, float(r["occurred_at"]), outcome))
    return out


def inventory_of(
    records: Iterable[Record],
    *,
    step: dt.timedelta = dt.timedelta(days=7),
    folds: int = 3,
) -> dict[str, Any]:
    """:func:`inventory` over plain records (time-ordered here)."""
    ordered = sorted(records, key=lambda r: r[2])
    by_type: dict[str, dict[str, Any]] = {}
    by_silo: dict[str, dict[str, Any]] = {}
    times: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    born: dict[str, float] = {}
    closed: dict[str, float] = {}
    won: dict[str, float] = {}
    for lead, kind, t, outcome in ordered:
        silo = SILO[kind]
        for table, key in ((by_type, kind), (by_silo, silo)):
            row = table.setdefault(key, {"events": 0, "leads": set(), "first": t, "last": t})
            row["events"] += 1
            row["leads"].add(lead)
            row["last"] = t
        if kind == "lead.created" or lead not in born:
            born[lead] = t if kind == "lead.created" else born.get(lead, t)
        if outcome and lead not in closed:
            closed[lead] = t
            if outcome == "won":
                won[lead] = t
        elif not outcome:
            times[lead][silo].append(t)
    if not ordered:
        return {"events": 0, "leads": 0, "types": [], "silos": [], "cutoffs": 0}
    start, end = ordered[0][2], ordered[-1][2]
    cutoffs = list(np.arange(start + step.total_seconds(), end, step.total_seconds()))
    silos = sorted(by_silo)
    auc = {s: _silo_auc(s, times, born, closed, won, cutoffs, end, folds) for s in silos}

    def summary(key: str, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "events": row["events"],
            "leads": len(row["leads"]),
            "first_seen": _iso(row["first"]),
            "last_seen": _iso(row["last"]),
        }

    return {
        "events": len(ordered),
        "leads": len(born),
        "converted": len(won),
        "cutoffs": len(cutoffs),
        "step_days": step.total_seconds() / DAY,
        "horizons_days": list(HORIZONS_DAYS),
        "types": [
            {"type": k, "silo": SILO[k], **summary(k, v)} for k, v in sorted(by_type.items())
        ],
        "silos": [{"silo": s, **summary(s, by_silo[s]), "auc": auc[s]} for s in silos],
    }


def silo_features(stamps: list[float], t: float) -> list[float]:
    """Counts in the last 1, 7 and 30 days and days since the last event (capped at 30),
    from the sorted event times ``stamps``, using only those at or before ``t``.

    No all-time count and no longer recency: those grow with the lead's age, and age
    predicts on its own (leads that have waited long without buying rarely buy), which
    would lend every silo the same borrowed power."""
    upto = bisect.bisect_right(stamps, t)
    counts = [upto - bisect.bisect_right(stamps, t - d * DAY) for d in (1, 7, 30)]
    since = min((t - stamps[upto - 1]) / DAY, 30.0) if upto else 30.0
    return [math.log1p(c) for c in counts] + [since / 30.0]


def _silo_auc(
    silo: str,
    times: dict[str, dict[str, list[float]]],
    born: dict[str, float],
    closed: dict[str, float],
    won: dict[str, float],
    cutoffs: list[float],
    end: float,
    folds: int,
) -> dict[str, float | None]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    rows, groups, ts, leads = [], [], [], []
    for lead, t0 in born.items():
        stamps = times[lead][silo]
        for t in cutoffs:
            if t < t0 or closed.get(lead, math.inf) <= t:
                continue
            rows.append(silo_features(stamps, t))
            groups.append(lead)
            ts.append(t)
            leads.append(lead)
    out: dict[str, float | None] = {}
    x = np.asarray(rows, dtype=float).reshape(len(rows), 4)
    for h in HORIZONS_DAYS:
        labels, keep = [], []
        for i, (lead, t) in enumerate(zip(leads, ts, strict=True)):
            horizon_end = t + h * DAY
            w, c = won.get(lead), closed.get(lead)
            if w is not None and w <= horizon_end:
                labels.append(1)
            elif (c is not None and c <= horizon_end) or horizon_end <= end:
                labels.append(0)
            else:
                continue  # censored: the window runs past the data with no outcome
            keep.append(i)
        y = np.asarray(labels)
        if y.sum() < MIN_CLASS or (len(y) - y.sum()) < MIN_CLASS:
            out[str(h)] = None
            continue
        xs, gs = x[keep], np.asarray(groups)[keep]
        scores = np.zeros(len(y))
        n_folds = min(folds, len(set(gs)))
        for train, test in GroupKFold(n_splits=n_folds).split(xs, y, gs):
            if len(set(y[train])) < 2:
                scores[test] = 0.5
                continue
            model = LogisticRegression(solver="liblinear").fit(xs[train], y[train])
            scores[test] = model.predict_proba(xs[test])[:, 1]
        out[str(h)] = round(float(roc_auc_score(y, scores)), 4)
    return out

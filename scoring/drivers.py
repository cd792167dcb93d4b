"""Win/loss drivers: what the live model credits for the leads that were won and lost.

For each closed lead, its last snapshot before the outcome is scored by the model and
its per-feature contributions (Saabas path attributions from
:meth:`scoring.trees.CompiledTrees.margin_and_contribs`, in log-odds) are summed per
CRM field or feature family, as the reasons are. The driver table is the mean
contribution on won leads beside the mean on lost ones, ordered by the gap: the
features that most separate what was won from what was lost, in the model's eyes.
It says what the model leans on, not what causes a win.
"""

from __future__ import annotations

import numpy as np

from scoring.model_scorer import CompiledModel
from scoring.train import Snapshots


def drivers(model: CompiledModel, snaps: Snapshots, top: int = 12) -> list[dict[str, float | str]]:
    """Mean contribution per feature group on won and on lost leads, biggest gap first."""
    last: dict[str, int] = {}
    for i, (lead, t) in enumerate(zip(snaps.lead, snaps.t, strict=True)):
        closed = snaps.closed_at.get(lead)
        if closed is not None and t < closed:
            last[lead] = i  # rows are in time order: the latest before the outcome wins
    groups = len(model.members)
    sums = {True: np.zeros(groups), False: np.zeros(groups)}
    counts = {True: 0, False: 0}
    for lead, i in last.items():
        _, contribs, _ = model.trees.margin_and_contribs(np.asarray(snaps.x[i], dtype=np.float32))
        won = lead in snaps.converted_at
        sums[won] += np.bincount(model.group_of, weights=contribs, minlength=groups)
        counts[won] += 1
    if not counts[True] or not counts[False]:
        return []
    won_mean, lost_mean = sums[True] / counts[True], sums[False] / counts[False]
    rows: list[dict[str, float | str]] = []
    for g, members in enumerate(model.members):
        name = model.names[members[0]]
        rows.append(
            {
                "feature": name.split("=", 1)[0] if "=" in name else name,
                "won": round(float(won_mean[g]), 4),
                "lost": round(float(lost_mean[g]), 4),
                "gap": round(float(won_mean[g] - lost_mean[g]), 4),
                "won_leads": counts[True],
                "lost_leads": counts[False],
            }
        )
    rows.sort(key=lambda r: -abs(float(r["gap"])))
    return rows[:top]

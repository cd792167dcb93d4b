"""Score signals for playbooks: did a score cross a threshold, did it jump?

Pure functions over :class:`nudge.signals.ScorePoint` lists (the ``history`` every
:class:`~nudge.signals.LeadSignal` carries, oldest first), so the playbook evaluator needs
no state of its own and the answers are the same in a live worker and in
``nudge playbooks simulate``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

from nudge.signals import ScorePoint

Direction = Literal["up", "down", "either"]


def changed(prev: float | None, cur: float, min_delta: float = 0.01) -> bool:
    """True if the score moved by at least ``min_delta`` (a first score always changed)."""
    return prev is None or abs(cur - prev) >= min_delta


def crossed(prev: float | None, cur: float, threshold: float, direction: Direction = "up") -> bool:
    """True if going from ``prev`` to ``cur`` crossed ``threshold`` in ``direction``.

    "Up" means ``prev < threshold <= cur``; "down" means ``prev >= threshold > cur``. A
    first score (``prev`` None) counts as coming from 0, so a lead that starts hot fires.
    """
    before = 0.0 if prev is None else prev
    up = before < threshold <= cur
    down = before >= threshold > cur
    if direction == "up":
        return up
    if direction == "down":
        return down
    return up or down


def jumped(history: Sequence[ScorePoint], delta: float, window: dt.timedelta) -> bool:
    """True if the latest score is at least ``delta`` above the lowest score of the
    ``window`` before it (or, for a negative ``delta``, that far below the highest)."""
    if len(history) < 2 or delta == 0:
        return False
    latest = history[-1]
    since = latest.at - window
    earlier = [p.value for p in history[:-1] if p.at >= since]
    if not earlier:
        return False
    if delta > 0:
        return latest.value - min(earlier) >= delta
    return latest.value - max(earlier) <= delta

"""Windowed counts: "3 pricing-page views within a day", kept per lead.

A rule that counts (an ``event`` trigger with ``count:``, or a ``count`` condition)
names a :class:`Window`: an event type, ``where`` filters on its fields, and how far
back it looks. The lead stage (the worker's lead agent, and ``simulate``'s replay —
the same :func:`track`) keeps, per lead and per window the loaded playbooks name, the
times of the latest matching events: only as many as the largest threshold needs and
only as old as the longest window, so the state stays small. A window added by a new
or edited playbook starts counting when it is loaded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from playbooks import fields as f

if TYPE_CHECKING:
    from playbooks.model import Playbook


@dataclass(frozen=True)
class Window:
    """What to count: events of ``event`` passing ``where``, looking back ``within``."""

    event: str
    where: tuple[tuple[str, str], ...]
    """(field, JSON of its operator) pairs, so the window is hashable."""
    within: dt.timedelta
    keep: int
    """How many of the latest matching times a threshold needs."""

    @property
    def key(self) -> str:
        text = json.dumps([self.event, list(self.where)], sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


def window(event: str, where: dict[str, dict[str, Any]], within: dt.timedelta, keep: int) -> Window:
    pairs = tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in where.items()))
    return Window(event, pairs, within, keep)


def windows_of(playbooks: list[Playbook]) -> dict[str, Window]:
    """Every window the playbooks count, merged by key (longest look-back, most kept)."""
    out: dict[str, Window] = {}
    for pb in playbooks:
        if not pb.enabled:
            continue
        for w in pb.windows():
            have = out.get(w.key)
            if have is None:
                out[w.key] = w
            else:
                out[w.key] = Window(
                    w.event, w.where, max(w.within, have.within), max(w.keep, have.keep)
                )
    return out


def _passes(w: Window, event: dict[str, Any]) -> bool:
    from playbooks.conditions import Compare

    data = {"event": f.Fields(event)}
    for name, ops in w.where:
        field = "event." + name.removeprefix("event.")
        cond = Compare.model_validate({"field": field, **json.loads(ops)})
        if not cond.holds(data, dt.datetime.now(dt.UTC)):
            return False
    return True


def track(
    kept: dict[str, list[str]],
    windows: dict[str, Window],
    event_type: str,
    event: dict[str, Any],
    at: dt.datetime,
) -> None:
    """Add this event's time to every window it counts for; drop what no window needs."""
    stamp = at.astimezone(dt.UTC).isoformat()
    for key in [k for k in kept if k not in windows]:
        del kept[key]
    for key, w in windows.items():
        times = kept.get(key, [])
        if w.event == event_type and _passes(w, event):
            times = sorted([*times, stamp])
        oldest = (at - w.within).astimezone(dt.UTC).isoformat()
        times = [t for t in times if t > oldest][-w.keep :]
        if times:
            kept[key] = times
        else:
            kept.pop(key, None)


def count(data: dict[str, Any], w: Window, until: dt.datetime) -> int:
    """Matching events in ``(until - within, until]`` (``data`` from :func:`fields.views`)."""
    times = (data.get("windows") or {}).get(w.key, [])
    since = until - w.within
    return sum(1 for t in times if since < _time(t) <= until)


def _time(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))

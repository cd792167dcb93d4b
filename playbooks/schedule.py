"""The pure half of the durable scheduler: when is something due, and is it still valid.

Every delayed thing in Nudge — ``wait`` steps, escalations, "120 days before a
date", inactivity, weekly schedules, digests — becomes one
:class:`nudge.signals.ScheduleStep` row in ``crm.schedules`` (the durable half).
This module computes *when* (in the rep's time zone, DST-correct through
``zoneinfo``) and gives ids that are a function of *what* is scheduled, so
re-planning the same thing after a restart produces the same row, never a second.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from nudge.signals import ScheduleStep, command_id_for

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
STALE_AFTER = dt.timedelta(days=1)
"""A date trigger whose moment passed longer ago than this is not fired late."""


def next_run(at: dt.time, days: Sequence[str], zone: ZoneInfo, after: dt.datetime) -> dt.datetime:
    """The first local ``at`` on one of ``days`` strictly after ``after`` (returned in UTC).

    A local time that does not exist (the spring-forward gap) runs at the
    equivalent instant after the gap; an ambiguous one runs at its first occurrence.
    """
    local = after.astimezone(zone)
    wanted = {WEEKDAYS.index(d) for d in days} or set(range(7))
    for offset in range(0, 8):
        day = local.date() + dt.timedelta(days=offset)
        if day.weekday() not in wanted:
            continue
        candidate = dt.datetime.combine(day, at, tzinfo=zone)
        # round-trip through UTC normalises times inside a DST gap
        candidate_utc = candidate.astimezone(dt.UTC)
        if candidate_utc > after:
            return candidate_utc
    raise ValueError("no weekday selected")  # unreachable: validation requires >= 1 day


def date_due(
    value: object,
    offset: dt.timedelta,
    at: dt.time,
    zone: ZoneInfo,
    now: dt.datetime,
) -> dt.datetime | None:
    """When a "N days before/after a date field" trigger is due; ``None`` if never.

    ``offset`` is negative for "before". If that moment has passed — the lead was
    created, or the date entered, inside the window — it is due now, as long as the
    date itself is still ahead or the moment passed less than :data:`STALE_AFTER`
    ago; otherwise it is too late to act on and never fires.
    """
    day = parse_date(value)
    if day is None:
        return None
    target = dt.datetime.combine(day, at, tzinfo=zone).astimezone(dt.UTC)
    due = target + offset
    if due >= now:
        return due
    # the moment passed: fire now if the date itself is still ahead, or only just passed
    if target >= now or now - due <= STALE_AFTER:
        return now
    return None


def parse_date(value: object) -> dt.date | None:
    """A date from a CRM value: a date, a datetime or an ISO string; else ``None``."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def schedule_id(purpose: str, playbook: str, rule: str, key: str, discriminator: str) -> str:
    """The row id: the same (purpose, rule, lead/rep, what) always maps to the same row."""
    return command_id_for("schedule", purpose, playbook, rule, key, discriminator)


def is_due(step: ScheduleStep, now: dt.datetime) -> bool:
    """Due at or before ``now``."""
    return step.due_at <= now


def due_steps(steps: list[ScheduleStep], now: dt.datetime) -> list[ScheduleStep]:
    """The due ones, oldest first (ties by id, so the order is reproducible)."""
    return sorted((s for s in steps if is_due(s, now)), key=lambda s: (s.due_at, s.schedule_id))

"""Whether, when and where a nudge goes: pure decisions, no I/O, time passed in.

Why pure: quiet hours, daily limits and opt-outs are the rules a rep (and the law)
holds us to; as plain functions of (command, rep, now, counts) they are tested in
microseconds for every time zone and edge, and the sender only carries them out.

The rules, in the order :func:`decide` applies them:

1. unknown rep → suppress (the sender first gives the rep's record a grace period to
   arrive: :data:`delivery.sender.UNKNOWN_REP_GRACE`).
2. channel: the command's channel if it names one, else the rep's preferred
   channel, else Slack when the rep has a Slack id, then SMS, then the console
   (the dev stand-in for the rep's phone). A channel is usable when a notifier for
   it is configured and the rep has an address on it; SMS and the console are not
   usable for a rep who texted STOP. None usable → suppress ("opted out" when only
   the opt-out stood in the way, else "no channel").
3. quiet hours (default 08:00–21:00 in the rep's own time zone, or the rule's own
   ``quiet_hours`` when the nudge carries them): hold until the window opens. Held nudges are released by a drain, never dropped.
4. daily limit per rep and local day → suppress. It counts nudges only: questions,
   acknowledgements and "which one?" (``CONVERSATION_PLAYBOOKS``) neither count nor are
   limited by it — a questionnaire paces itself (one question at a time per channel,
   the next only after an answer, a reminder, then it closes).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nudge.reps import RepContact
from nudge.signals import CONVERSATION_PLAYBOOKS, NudgeCommand

Action = Literal["send", "hold", "suppress"]
CHANNEL_ORDER = ("slack", "sms", "console")


def parse_hhmm(value: str) -> dt.time:
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


@dataclass(frozen=True)
class Policy:
    """Defaults every rep gets unless their own row says otherwise."""

    quiet_start: dt.time = dt.time(8, 0)
    quiet_end: dt.time = dt.time(21, 0)
    daily_limit: int = 20

    @classmethod
    def from_settings(cls, settings: Any) -> Policy:
        return cls(
            quiet_start=parse_hhmm(settings.quiet_hours_start),
            quiet_end=parse_hhmm(settings.quiet_hours_end),
            daily_limit=settings.daily_limit,
        )


@dataclass(frozen=True)
class Rep(RepContact):
    """A rep as delivery sees them: their contact (:class:`nudge.reps.RepContact`, the one
    definition of it) and their own channel, quiet hours and limit."""

    preferred_channel: str | None = None
    quiet_start: dt.time = dt.time(8, 0)
    quiet_end: dt.time = dt.time(21, 0)
    daily_limit: int = 20

    @classmethod
    def from_row(
        cls,
        row: Mapping[str, Any],
        policy: Policy = Policy(),
        normalise_phone: Callable[[str], str | None] = lambda s: s,
    ) -> Rep:
        """Build from a ``reps`` row; NULL preferences fall back to ``policy``."""
        phone = normalise_phone(row["phone"]) if row.get("phone") else None
        return cls(
            rep_id=row["rep_id"],
            name=row["name"],
            phone=phone,
            email=row.get("email"),
            slack_user_id=row.get("slack_user_id"),
            timezone=row.get("timezone") or "UTC",
            preferred_channel=row.get("preferred_channel"),
            quiet_start=parse_hhmm(row["quiet_start"])
            if row.get("quiet_start")
            else policy.quiet_start,
            quiet_end=parse_hhmm(row["quiet_end"]) if row.get("quiet_end") else policy.quiet_end,
            daily_limit=row.get("daily_limit") or policy.daily_limit,
        )

    @property
    def zone(self) -> dt.tzinfo:
        """The rep's zone; an unknown name counts as UTC rather than stopping delivery."""
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return dt.UTC


@dataclass(frozen=True)
class Decision:
    action: Action
    channel: str | None = None
    not_before: dt.datetime | None = None
    reason: str | None = None


def local_day_start(now: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """Midnight of ``now``'s day in ``zone`` (where the daily limit resets)."""
    local = now.astimezone(zone)
    return dt.datetime.combine(local.date(), dt.time(0), tzinfo=zone)


def window_opens(
    now: dt.datetime, zone: dt.tzinfo, start: dt.time, end: dt.time
) -> dt.datetime | None:
    """None when ``now`` is inside the sending window, else the moment it next opens.

    ``start > end`` means a window across midnight (e.g. 20:00–02:00).
    """
    local = now.astimezone(zone)
    t = local.time().replace(tzinfo=None)
    inside = start <= t < end if start < end else (t >= start or t < end)
    if inside or start == end:
        return None
    day = local.date() if t < start else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, start, tzinfo=zone).astimezone(dt.UTC)


def usable(channel: str, rep: Rep, available: Collection[str], opted_out: bool) -> bool:
    if channel not in available:
        return False
    if channel == "slack":
        return bool(rep.slack_user_id)
    if channel == "sms":
        return bool(rep.phone) and not opted_out
    return channel == "console" and not opted_out


def candidates(command: NudgeCommand, rep: Rep) -> list[str]:
    """Channels to try, most wanted first."""
    first = [c for c in (command.channel, rep.preferred_channel) if c and c != "best"]
    return list(dict.fromkeys([*first, *CHANNEL_ORDER]))


def decide(
    command: NudgeCommand,
    rep: Rep | None,
    now: dt.datetime,
    *,
    sent_today: int,
    opted_out: bool,
    available: Collection[str],
) -> Decision:
    """Send now, hold until the window opens, or suppress with a reason (see module doc)."""
    if rep is None:
        return Decision("suppress", reason="unknown rep")
    order = candidates(command, rep)
    channel = next((c for c in order if usable(c, rep, available, opted_out)), None)
    if channel is None:
        blocked_by_opt_out = opted_out and any(usable(c, rep, available, False) for c in order)
        return Decision("suppress", reason="opted out" if blocked_by_opt_out else "no channel")
    window = command.quiet_hours  # a rule's own send window overrides the rep's
    start, end = (window.start, window.end) if window else (rep.quiet_start, rep.quiet_end)
    opens = window_opens(now, rep.zone, start, end)
    if opens is not None:
        return Decision("hold", channel=channel, not_before=opens, reason="quiet hours")
    if command.playbook not in CONVERSATION_PLAYBOOKS and sent_today >= rep.daily_limit:
        return Decision("suppress", channel=channel, reason="daily limit")
    return Decision("send", channel=channel)


def retry_delay(
    attempt: int,
    *,
    base: float = 1.0,
    cap: float = 900.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...): exponential, jittered.

    "Equal jitter": half the exponential step is kept, the other half is random, so
    retries from many workers spread out but never collapse to zero.
    """
    step: float = min(cap, base * 2.0 ** max(0, attempt - 1))
    return step / 2 + rand() * step / 2

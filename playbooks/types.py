"""Small value types shared by every kind of trigger, condition and action.

Durations are written the way people say them (``15m``, ``4h``, ``3d``, ``2w``),
times of day as ``HH:MM``, time zones as ``rep`` (the owner's zone) or an IANA
name. Each parses at load time, so a typo is a located error, not a crash at 3 am.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from playbooks import messages as msg

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_NUMBER = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_DURATION = dt.timedelta(days=3 * 366)


class Model(BaseModel):
    """Base of every playbook model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_duration(value: Any) -> dt.timedelta:
    """``15m`` → 15 minutes (or a timedelta). A bare number is refused: ``digest_after: 3``
    once meant three seconds where the writer meant hours or days."""
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif (isinstance(value, int | float) and not isinstance(value, bool)) or (
        isinstance(value, str) and _NUMBER.match(value)
    ):
        number = str(value).strip()
        raise ValueError(msg.DURATION_UNIT.format(value=number))
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(msg.BAD_DURATION.format(value=value))
    if not 0 < seconds <= MAX_DURATION.total_seconds():
        raise ValueError(msg.BAD_DURATION.format(value=value))
    return dt.timedelta(seconds=seconds)


def parse_score(value: Any) -> float:
    """A score as people write it: ``70%`` or ``0.7`` (0–1). ``70`` is refused with both
    spellings, since scores are shown as percent but computed as probabilities."""
    if isinstance(value, str) and (m := _PERCENT.match(value)):
        number = float(m.group(1))
        if 0 <= number <= 100:
            return number / 100
    elif isinstance(value, str) and _NUMBER.match(value):
        value = float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 0 <= value <= 1:
            return float(value)
        if 1 < value <= 100:
            raise ValueError(
                msg.SCORE_UNIT.format(value=value, pct=f"{value:g}%", frac=f"{value / 100:g}")
            )
    raise ValueError(msg.BAD_SCORE.format(value=value))


def pct(value: float) -> str:
    """0.7 → ``70%`` (how checks and texts show scores)."""
    return f"{value * 100:g}%"


def parse_time(value: Any) -> dt.time:
    """``08:30`` → 08:30."""
    if isinstance(value, dt.time):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        # YAML 1.1 reads 08:30 as the sexagesimal integer 510
        return dt.time(value // 60, value % 60)
    if isinstance(value, str) and re.match(r"^\d{1,2}:\d{2}$", value.strip()):
        hour, minute = (int(p) for p in value.strip().split(":"))
        if hour < 24 and minute < 60:
            return dt.time(hour, minute)
    raise ValueError(msg.BAD_TIME.format(value=value))


def parse_zone(value: Any) -> str:
    """``rep`` or a valid IANA zone name."""
    if value == "rep":
        return "rep"
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(msg.BAD_ZONE.format(value=value)) from exc
    return str(value)


def human_duration(value: dt.timedelta) -> str:
    """The inverse of :func:`parse_duration`: 86400 s → ``1d``, 900 s → ``15m``."""
    seconds = int(value.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


Duration = Annotated[dt.timedelta, BeforeValidator(parse_duration)]
TimeOfDay = Annotated[dt.time, BeforeValidator(parse_time)]
Zone = Annotated[str, BeforeValidator(parse_zone)]
ScoreValue = Annotated[float, BeforeValidator(parse_score)]
"""A score threshold or change: ``70%`` or ``0.7``."""
Share = Annotated[float, Field(ge=0, le=1)]
Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]


def zone_for(zone: str, rep_zone: str | None) -> ZoneInfo:
    """The ZoneInfo a ``Zone`` means for a rep (``rep`` → theirs, UTC if unknown)."""
    name = (rep_zone or "UTC") if zone == "rep" else zone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")

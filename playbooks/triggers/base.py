"""What every trigger kind answers; each kind overrides what applies to it.

Signal-driven kinds answer :meth:`TriggerKind.fires` with the values that matched,
or ``None``. Time-driven kinds (``timed = True``) never fire on a signal directly:
:meth:`TriggerKind.plan` turns a signal into a due time for the scheduler, and the
rule runs when the worker resumes the due row, after :meth:`TriggerKind.still_valid`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from nudge.signals import LeadSignal
from playbooks.types import Model, human_duration, pct
from playbooks.windows import Window

Match = dict[str, Any]
"""Field → value that made a trigger fire (shown by ``simulate`` as "why")."""


class TriggerKind(Model):
    """Base of every trigger model (``type`` is the discriminator)."""

    type: str
    timed: ClassVar[bool] = False
    """Time-driven: planned on signals, run when the scheduler says it is due."""
    score_based: ClassVar[bool] = False
    score_fields: ClassVar[tuple[str, ...]] = ()
    """Fields that hold scores: shown as percent."""

    @property
    def event_type(self) -> str | None:
        """The event type the trigger pins, if any (narrows ``event.*`` field checks)."""
        return None

    def fires(self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime) -> Match | None:
        """The matched values if ``signal`` fires this (signal-driven) trigger."""
        return None

    def windows(self) -> list[Window]:
        """The windowed counts this trigger reads."""
        return []

    def why_not(self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime) -> str:
        """Why this trigger did not fire on a signal it listens to (for the trace)."""
        return f"trigger `{self.describe()}` did not match"

    def may_fire(self, signal: LeadSignal) -> bool:
        """False only if this trigger certainly ignores ``signal`` (cheap, conservative)."""
        return self.timed or self.fires(signal, {}, signal.at) is not None

    def plan(
        self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime
    ) -> tuple[dt.datetime, dict[str, Any]] | None:
        """For a time-driven trigger: (when it is due, what must still hold then)."""
        return None

    def still_valid(self, check: dict[str, Any], signal: LeadSignal, data: dict[str, Any]) -> bool:
        """When a planned row comes due: does what it was planned on still hold?"""
        return False

    def describe(self) -> str:
        """A short human description: ``score.jumped by=0.4, within=1d``."""
        parts = []
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if name == "type" or value == info.default or value in (None, [], {}):
                continue
            shown = human_duration(value) if isinstance(value, dt.timedelta) else value
            shown = pct(value) if name in self.score_fields else shown
            parts.append(f"{info.alias or name}={shown}")
        return self.type + (" " + ", ".join(parts) if parts else "")

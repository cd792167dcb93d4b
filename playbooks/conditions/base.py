"""What every condition kind answers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from playbooks.types import Model
from playbooks.windows import Window


class ConditionKind(Model):
    """Base of every condition model. Written without ``type``: the key present picks it."""

    def holds(self, data: dict[str, Any], now: dt.datetime) -> bool:
        """Does the condition hold on :func:`playbooks.fields.views` data?"""
        raise NotImplementedError

    def reads(self, data: dict[str, Any]) -> dict[str, Any]:
        """The fields this condition reads and their values (the "why" of a decision)."""
        return {}

    def windows(self) -> list[Window]:
        """The windowed counts this condition reads (kept per lead by the lead stage)."""
        return []

    def describe(self) -> str:
        """The condition in words, for the decision trace."""
        return self.type  # type: ignore[attr-defined, no-any-return]

    def event_field_problems(self, event_type: str) -> list[str]:
        """Problems with the ``event.*`` names read, for a rule on ``event_type``."""
        return []

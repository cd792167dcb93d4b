"""What every action kind answers."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, ClassVar

from playbooks import messages as msg
from playbooks.conditions import Condition
from playbooks.types import Model

if TYPE_CHECKING:
    from playbooks.steps import Run


def recipient_ok(value: str) -> str:
    """``owner``, ``manager`` or ``team:<name>``."""
    if value in ("owner", "manager") or (value.startswith("team:") and len(value) > 5):
        return value
    raise ValueError(msg.TEAM_NAME)


class ActionKind(Model):
    """Base of every action model; any step may carry ``when:`` (a condition)."""

    type: str
    when: Condition | None = None
    sends_nudge: ClassVar[bool] = False
    """Issues a nudge an ``escalate`` later in the chain can wait on."""
    needs_nudge_before: ClassVar[bool] = False
    may_end_chain: ClassVar[bool] = True
    ends_chain: ClassVar[bool] = False
    resume_as: ClassVar[str] = "continue"
    """For a step with a delay: the schedule purpose it resumes under."""

    def delay(self) -> dt.timedelta | None:
        """A step with a delay hands the rest of the chain to the scheduler."""
        return None

    def texts(self) -> list[tuple[str, str]]:
        """(template, channel) of each message this step renders (checked at load time)."""
        return []

    def issue(self, run: Run, index: int) -> None:
        """Append this step's commands to ``run.commands``."""

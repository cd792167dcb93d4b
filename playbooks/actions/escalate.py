"""``escalate``: tell someone else when the nudge went unanswered."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, field_validator

from playbooks.actions.base import ActionKind, recipient_ok
from playbooks.actions.nudge import Channel, send
from playbooks.kinds import register
from playbooks.types import Duration

if TYPE_CHECKING:
    from playbooks.steps import Run


@register(
    "action",
    "escalate",
    """
    actions:
      - {type: nudge, template: "{{ lead.company }} is hot: call today"}
      - type: escalate
        after: 4h
        to: manager
        template: "{{ lead.company }} was flagged 4 h ago and nobody has called"
    """,
)
class EscalateAction(ActionKind):
    """If the last nudge gets no reply and the lead no call or meeting within ``after``,
    text ``to`` (default ``manager``). Needs an earlier ``nudge`` in the same rule.
    """

    type: Literal["escalate"]
    after: Duration
    to: str = "manager"
    channel: Channel = "best"
    template: str = Field(min_length=1, max_length=1600)
    needs_nudge_before: ClassVar[bool] = True
    resume_as: ClassVar[str] = "escalate"

    _to = field_validator("to")(classmethod(lambda cls, v: recipient_ok(v)))

    def delay(self) -> dt.timedelta | None:
        return self.after

    def texts(self) -> list[tuple[str, str]]:
        return [(self.template, self.channel)]

    def issue(self, run: Run, index: int) -> None:
        send(run, index, self.to, self.channel, self.template)

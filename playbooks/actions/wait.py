"""``wait``: pause the chain."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from pydantic import Field

from playbooks.actions.base import ActionKind
from playbooks.kinds import register
from playbooks.types import Duration


@register(
    "action",
    "wait",
    """
    actions:
      - {type: nudge, template: "Call {{ lead.contact_name }} at {{ lead.company }}"}
      - {type: wait, for: 2d}
      - {type: nudge, template: "Still open: {{ lead.company }}"}
    """,
)
class WaitAction(ActionKind):
    """Pauses the chain for ``for`` (durably: survives restarts); cannot be the last step."""

    type: Literal["wait"]
    for_: Duration = Field(alias="for")
    may_end_chain: ClassVar[bool] = False

    def delay(self) -> dt.timedelta | None:
        return self.for_

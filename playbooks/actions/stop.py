"""``stop``: end the chain."""

from __future__ import annotations

from typing import ClassVar, Literal

from playbooks.actions.base import ActionKind
from playbooks.kinds import register


@register(
    "action",
    "stop",
    """
    actions:
      - {type: stop, when: {field: lead.status, eq: won}}
    """,
)
class StopAction(ActionKind):
    """Ends the chain here (usually with ``when:``)."""

    type: Literal["stop"]
    ends_chain: ClassVar[bool] = True

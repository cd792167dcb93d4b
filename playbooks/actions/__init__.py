"""Actions: the steps of a rule, run in order; a chain of them is a workflow.

``nudge``, ``ask`` and ``update_crm`` issue commands now; ``wait`` and ``escalate``
hand the rest of the chain to the scheduler; ``stop`` ends it. Any step may carry
``when:`` (a condition), so a chain can branch: ``{type: stop, when: {field:
lead.status, eq: won}}``. One module per kind, joined here into one union.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from playbooks import kinds
from playbooks.actions.ask import AskAction
from playbooks.actions.base import ActionKind
from playbooks.actions.escalate import EscalateAction
from playbooks.actions.nudge import Channel, NudgeAction
from playbooks.actions.stop import StopAction
from playbooks.actions.update_crm import UpdateCrmAction
from playbooks.actions.wait import WaitAction

kinds.arrange("action", ("nudge", "ask", "update_crm", "wait", "escalate", "stop"))

if TYPE_CHECKING:
    Action = ActionKind
else:
    Action = kinds.union("action")

__all__ = [
    "Action",
    "ActionKind",
    "AskAction",
    "Channel",
    "EscalateAction",
    "NudgeAction",
    "StopAction",
    "UpdateCrmAction",
    "WaitAction",
]

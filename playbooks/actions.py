"""Actions: the steps of a rule, run in order; a chain of them is a workflow.

``nudge``, ``ask`` and ``update_crm`` issue commands now; ``wait`` and ``escalate``
hand the rest of the chain to the scheduler; ``stop`` ends it. Any step may carry
``when:`` (a condition), so a chain can branch: ``{type: stop, when: {field:
lead.status, eq: won}}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from playbooks import fields as f
from playbooks import messages as msg
from playbooks.conditions import Condition
from playbooks.types import Duration, Ident, Model

Channel = Literal["best", "sms", "slack"]


def _recipient(value: str) -> str:
    if value in ("owner", "manager") or (value.startswith("team:") and len(value) > 5):
        return value
    raise ValueError(msg.TEAM_NAME)


class _Step(Model):
    when: Condition | None = None


class NudgeAction(_Step):
    """Text (or Slack) someone about the lead."""

    type: Literal["nudge"]
    to: str = "owner"
    channel: Channel = "best"
    template: str = Field(min_length=1, max_length=1600)

    _to = field_validator("to")(classmethod(lambda cls, v: _recipient(v)))


class AskAction(_Step):
    """Start a questionnaire (by id) with the owner or manager."""

    type: Literal["ask"]
    questionnaire: Ident
    to: Literal["owner", "manager"] = "owner"
    channel: Channel = "best"
    record_on: Literal["lead", "deal"] = "lead"


class UpdateCrmAction(_Step):
    """Set a CRM field: ``lead.stage``, ``deal.stage``, ``lead.custom.<name>`` ..."""

    type: Literal["update_crm"]
    field: str
    value: str | int | float | bool | None

    @field_validator("field")
    @classmethod
    def _writable(cls, value: str) -> str:
        if not value.startswith(("lead.", "deal.")) or not f.is_known(value):
            raise ValueError(f.unknown_field_message(value))
        return value

    def crm_field(self) -> str:
        """The field as the CRM writer names it (``stage``, ``deal_value``, ``custom.x``)."""
        name = self.field.split(".", 1)[1]
        return {"value": "deal_value"}.get(name, name) if self.field.startswith("deal.") else name


class WaitAction(_Step):
    """Pause the chain for ``for`` (durably: survives restarts)."""

    type: Literal["wait"]
    for_: Duration = Field(alias="for")


class EscalateAction(_Step):
    """If the last nudge gets no reply and the lead no touch within ``after``, tell ``to``."""

    type: Literal["escalate"]
    after: Duration
    to: str = "manager"
    channel: Channel = "best"
    template: str = Field(min_length=1, max_length=1600)

    _to = field_validator("to")(classmethod(lambda cls, v: _recipient(v)))


class StopAction(_Step):
    """End the chain here (usually with ``when:``)."""

    type: Literal["stop"]


Action = Annotated[
    NudgeAction | AskAction | UpdateCrmAction | WaitAction | EscalateAction | StopAction,
    Field(discriminator="type"),
]
DELAYING = (WaitAction, EscalateAction)


def templates_of(action: Action) -> list[str]:
    """The templates an action renders (for load-time checks)."""
    return [action.template] if isinstance(action, NudgeAction | EscalateAction) else []


def delay_of(action: Action) -> dt.timedelta | None:
    if isinstance(action, WaitAction):
        return action.for_
    if isinstance(action, EscalateAction):
        return action.after
    return None


def summary(action: Action) -> dict[str, Any]:
    return action.model_dump(mode="json", exclude_defaults=True, by_alias=True, exclude={"when"})

"""``update_crm``: set a field of the lead or deal in the record."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import ValidationError, field_validator

from nudge.signals import UpdateCrmField, command_id_for
from playbooks import fields as f
from playbooks.actions.base import ActionKind
from playbooks.kinds import register
from playbooks.steps import StepFailed

if TYPE_CHECKING:
    from playbooks.steps import Run


@register(
    "action",
    "update_crm",
    """
    actions:
      - {type: update_crm, field: lead.stage, value: qualified}
    """,
)
class UpdateCrmAction(ActionKind):
    """Sets a CRM field: ``lead.stage``, ``deal.stage``, ``lead.custom.<name>`` ..."""

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

    def issue(self, run: Run, index: int) -> None:
        key = f"{run.rule.id}#{index}"
        try:
            run.commands.append(
                UpdateCrmField(
                    command_id=command_id_for(run.playbook.name, key, run.lead_id, run.trigger_id),
                    lead_id=run.lead_id,
                    field=self.crm_field(),
                    value=self.value,
                    **run.common(),
                )
            )
        except ValidationError as exc:
            raise StepFailed(str(exc)) from exc

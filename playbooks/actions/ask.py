"""``ask``: start a questionnaire with the rep."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import ValidationError

from nudge.logs import get_logger
from nudge.signals import AskQuestionnaire, command_id_for
from playbooks.actions.base import ActionKind
from playbooks.actions.nudge import Channel
from playbooks.kinds import register
from playbooks.steps import StepFailed
from playbooks.types import Ident

if TYPE_CHECKING:
    from playbooks.steps import Run

log = get_logger(__name__)


@register(
    "action",
    "ask",
    """
    actions:
      - {type: ask, questionnaire: post-meeting, to: owner}
    """,
)
class AskAction(ActionKind):
    """Starts questionnaire ``questionnaire`` (by id) with the owner or manager — or
    ``event_rep``, the rep the triggering event named (the Zoom host of a ``meeting.ended``,
    the rep on a call), else the owner; answers are recorded on the lead (or the deal with
    ``record_on: deal``).
    """

    type: Literal["ask"]
    questionnaire: Ident
    to: Literal["owner", "manager", "event_rep"] = "owner"
    channel: Channel = "best"
    record_on: Literal["lead", "deal"] = "lead"

    def issue(self, run: Run, index: int) -> None:
        rep_id = run.recipient(self.to)
        if rep_id is None:
            log.warning(
                "no recipient for questionnaire",
                playbook=run.playbook.name,
                rule=run.rule.id,
                lead_id=run.lead_id,
            )
            return
        key = f"{run.rule.id}#{index}"
        try:
            run.commands.append(
                AskQuestionnaire(
                    command_id=command_id_for(run.playbook.name, key, run.lead_id, run.trigger_id),
                    rep_id=rep_id,
                    lead_id=run.lead_id,
                    questionnaire=self.questionnaire,
                    record_on=self.record_on,
                    channel=self.channel,
                    priority=run.rule.priority,
                    quiet_hours=run.quiet_hours(),
                    **run.common(),
                )
            )
        except ValidationError as exc:
            raise StepFailed(str(exc)) from exc

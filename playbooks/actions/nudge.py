"""``nudge``: text (or Slack) someone about the lead."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, ValidationError, field_validator

from nudge.logs import get_logger
from nudge.signals import NudgeCommand, NudgeTeam, command_id_for, nudge_id_for
from playbooks.actions.base import ActionKind, recipient_ok
from playbooks.kinds import register
from playbooks.steps import StepFailed, wait_for_owner

if TYPE_CHECKING:
    from playbooks.steps import Run

log = get_logger(__name__)
Channel = Literal["best", "sms", "slack"]


def send(run: Run, index: int, to: str, channel: Channel, template: str) -> None:
    """One nudge (or one per team member, fanned out by delivery) for this run."""
    pb, rule, lead = run.playbook, run.rule, run.signal.lead
    rule_key = f"{rule.id}#{index}"
    try:
        text = run.text(template)
        if to.startswith("team:"):
            run.commands.append(
                NudgeTeam(
                    command_id=command_id_for(pb.name, rule_key, lead.lead_id, run.trigger_id),
                    team=to.removeprefix("team:"),
                    lead_id=lead.lead_id,
                    channel=channel,
                    text=text,
                    reasons=run.reasons,
                    priority=rule.priority,
                    quiet_hours=run.quiet_hours(),
                    **run.common(),
                )
            )
            return
        rep_id = run.recipient(to)
        if rep_id is None and to == "owner" and wait_for_owner(run, index):
            log.info(
                "nudge waits for the lead's owner",
                playbook=pb.name,
                rule=rule.id,
                lead_id=lead.lead_id,
                waits=run.owner_waits + 1,
            )
            return
        if rep_id is None:
            log.warning(
                "no recipient for nudge",
                playbook=pb.name,
                rule=rule.id,
                to=to,
                lead_id=lead.lead_id,
            )
            return
        nudge_id = nudge_id_for(pb.name, rule_key, lead.lead_id, run.trigger_id)
        run.last_nudge_id = nudge_id
        run.commands.append(
            NudgeCommand(
                nudge_id=nudge_id,
                rep_id=rep_id,
                lead_id=lead.lead_id,
                channel=channel,
                text=text,
                reasons=run.reasons,
                priority=rule.priority,
                exploration=run.exploration,
                propensity=run.propensity,
                quiet_hours=run.quiet_hours(),
                **run.common(),
            )
        )
    except ValidationError as exc:
        raise StepFailed(str(exc)) from exc


@register(
    "action",
    "nudge",
    """
    actions:
      - type: nudge
        to: owner
        template: "{{ lead.company }} is at {{ score.value | pct }}: {{ score.reasons | join(', ') }}"
    """,
)
class NudgeAction(ActionKind):
    """Texts (or Slacks) ``to`` — ``owner``, ``manager``, ``team:<name>`` or ``event_rep``
    (the rep the triggering event names, such as the rep on a ``call.started``; the owner
    when it names none) — the rendered ``template``, on ``channel`` ``best`` (the rep's
    preference), ``sms`` or ``slack``. A lead with no owner yet (its web visits came
    before its CRM record): the nudge waits for one, tried again every minute for half
    an hour, and the steps after it wait with it.
    """

    type: Literal["nudge"]
    to: str = "owner"
    channel: Channel = "best"
    template: str = Field(min_length=1, max_length=1600)
    sends_nudge: ClassVar[bool] = True

    _to = field_validator("to")(
        classmethod(lambda cls, v: v if v == "event_rep" else recipient_ok(v))
    )

    def texts(self) -> list[tuple[str, str]]:
        return [(self.template, self.channel)]

    def issue(self, run: Run, index: int) -> None:
        send(run, index, self.to, self.channel, self.template)

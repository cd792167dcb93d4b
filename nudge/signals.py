"""What flows between the agents after ingest: scores, lead signals and commands.

``lead.signals`` carries a :class:`LeadSignal` per processed event: the lead as
it is now (profile and score), the event that moved it, and the recent score
history, so the playbook agent needs no state of its own. ``nudges`` carries
:class:`NudgeCommand`s keyed by rep. Each nudge has a deterministic id
(:func:`nudge_id_for`), which is how the outbox refuses to send it twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Score(_Model):
    """A lead's score: P(convert) in [0, 1], why, and who computed it."""

    value: float = Field(ge=0, le=1)
    previous: float | None = None
    reasons: list[str] = []
    model_version: str
    rule_based: bool = Field(description="True while the points scorer stands in for a model")
    expected_value: float | None = Field(default=None, description="value × deal value")
    scored_at: AwareDatetime


class ScorePoint(_Model):
    """One score in a lead's history; frozen, so signals can share the points they carry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: AwareDatetime
    value: float


class DealView(_Model):
    """The lead's current deal beyond its stage, value and status (kept on the lead)."""

    deal_id: str | None = None
    name: str | None = None
    close_date: str | None = None
    next_step: str | None = None
    custom: dict[str, Any] = {}


class TargetScore(_Model):
    """A lead's score for one target beyond conversion (``churn``, ``cross_sell:<product>``):
    the score, its recent history (oldest first) and when it was first scored."""

    score: Score
    history: list[ScorePoint] = []
    first_scored_at: AwareDatetime | None = None


class LeadView(_Model):
    """A read-only snapshot of a lead, as playbooks and templates see it."""

    lead_id: str
    company: str | None = None
    contact_name: str | None = None
    title: str | None = None
    industry: str | None = None
    employees: int | None = None
    deal_value: float | None = None
    stage: str | None = None
    owner_rep_id: str | None = None
    email: str | None = None
    phone: str | None = None
    custom: dict[str, Any] = {}
    status: Literal["open", "won", "lost"] = "open"
    deal: DealView = DealView()
    last_touch_at: AwareDatetime | None = None
    last_contacted_at: AwareDatetime | None = Field(
        default=None, description="last call, meeting or reply with the rep (not web visits)"
    )


class RepView(_Model):
    """The lead owner as playbooks see it: who manages them, their team and time zone."""

    rep_id: str
    name: str | None = None
    timezone: str = "UTC"
    manager_rep_id: str | None = None
    team: str | None = None


class LeadSignal(_Model):
    """One processed event, as the playbook agent sees it."""

    lead: LeadView
    event: dict[str, Any] = Field(description="the event that caused this signal, as JSON")
    event_id: str
    event_type: str
    at: AwareDatetime = Field(description="when the event occurred")
    score: Score
    history: list[ScorePoint] = Field(default=[], description="recent scores, oldest first")
    windows: dict[str, list[AwareDatetime]] = Field(
        default={}, description="times of recent events per counted window (playbooks.windows)"
    )
    first_scored_at: AwareDatetime | None = Field(
        default=None, description="when the lead was first scored (None: not known)"
    )
    rep: RepView | None = Field(
        default=None,
        description="the owner (for `to: manager`, team audiences, the rep's time zone)",
    )
    targets: dict[str, TargetScore] = Field(
        default={},
        description="the lead's scores beyond conversion, by target (`churn`, "
        "`cross_sell:<product>`): only the promoted targets that apply to the lead",
    )


class QuietHours(_Model):
    """A local-time window in which messages may be sent; outside it delivery holds them."""

    start: dt.time
    end: dt.time


CONVERSATION_PLAYBOOKS = ("questionnaire", "reply")
"""The ``playbook`` of messages Nudge sends in a conversation (questions, acknowledgements,
"which one?"): not nudges — never snoozed, never counted against the daily nudge limit."""


class NudgeCommand(_Model):
    """Send one message to one rep about one lead."""

    kind: Literal["nudge"] = "nudge"
    nudge_id: str
    rep_id: str
    lead_id: str
    channel: Literal["best", "sms", "slack", "console"] = "best"
    text: str = Field(min_length=1, max_length=1600)
    reasons: list[str] = []
    playbook: str
    rule: str
    trigger_event_id: str
    created_at: AwareDatetime
    priority: int = 0
    exploration: bool = False
    propensity: float = Field(default=1.0, gt=0, le=1)
    quiet_hours: QuietHours | None = Field(
        default=None,
        description="this rule's override of the rep's quiet hours (delivery enforces)",
    )
    choices: list[str] = Field(
        default=[], description="one-tap answers (Slack buttons) for a questionnaire prompt"
    )
    about: list[str] = Field(
        default=[], description="the leads a digest names (a reply code asks which one)"
    )
    answer_box: bool = Field(
        default=False,
        description="a typed answer is expected: Slack offers an Answer button opening a modal",
    )
    code: str | None = Field(
        default=None,
        pattern=r"^[A-Z]$",
        description="the letter its reply codes carry ('Reply 1B'), set when it is queued "
        "(nudge.codes)",
    )


class NudgeTeam(_Model):
    """Send one message to every rep of a team: the worker fans it out with :func:`fan_out`."""

    kind: Literal["nudge_team"] = "nudge_team"
    command_id: str
    team: str
    lead_id: str
    channel: Literal["best", "sms", "slack", "console"] = "best"
    text: str = Field(min_length=1, max_length=1600)
    reasons: list[str] = []
    playbook: str
    rule: str
    trigger_event_id: str
    created_at: AwareDatetime
    priority: int = 0
    quiet_hours: QuietHours | None = None


class AskQuestionnaire(_Model):
    """Start questionnaire ``questionnaire`` with a rep about a lead (the conversation agent)."""

    kind: Literal["ask"] = "ask"
    command_id: str
    rep_id: str
    lead_id: str
    questionnaire: str
    record_on: Literal["lead", "deal"] = "lead"
    channel: Literal["best", "sms", "slack", "console"] = "best"
    playbook: str
    rule: str
    trigger_event_id: str
    created_at: AwareDatetime
    priority: int = 0
    quiet_hours: QuietHours | None = None


class UpdateCrmField(_Model):
    """Set one CRM field of a lead (``stage``, ``deal_value`` ... or ``custom.<name>``)."""

    kind: Literal["update_crm"] = "update_crm"
    command_id: str
    lead_id: str
    field: str
    value: str | int | float | bool | None
    playbook: str
    rule: str
    trigger_event_id: str
    created_at: AwareDatetime


class ScheduleStep(_Model):
    """Run something later: the rest of a workflow, a date/inactivity check, a digest.

    The worker stores it with ``crm.schedules.Schedules.add`` (the id makes a repeat
    harmless) and, once due, calls ``playbooks.resume`` with a fresh signal for the lead.
    """

    kind: Literal["schedule"] = "schedule"
    schedule_id: str
    due_at: AwareDatetime
    partition_key: str = Field(description="the lead id (or rep id for digests) that owns it")
    purpose: Literal[
        "continue", "escalate", "date", "inactivity", "tick", "digest", "questionnaire"
    ]
    lead_id: str | None = None
    rep_id: str | None = None
    playbook: str
    rule: str
    step: int = 0
    trigger_event_id: str
    check: dict[str, Any] = Field(
        default={}, description="what must still hold when due (e.g. the date value, last touch)"
    )
    created_at: AwareDatetime


Command = NudgeCommand | NudgeTeam | AskQuestionnaire | UpdateCrmField | ScheduleStep
"""Everything the playbook agent may issue; ``kind`` tells them apart."""

_COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(
    Annotated[Command, Field(discriminator="kind")]
)


def parse_command(raw: bytes | str) -> Command:
    """Decode any command from its JSON (as produced by ``model_dump_json``)."""
    return _COMMAND_ADAPTER.validate_json(raw)


def routing_key(command: Command) -> str:
    """The key a command is produced with: the rep for messages, the lead (or rep) otherwise."""
    if isinstance(command, NudgeCommand | AskQuestionnaire):
        return command.rep_id
    if isinstance(command, ScheduleStep):
        return command.partition_key
    return command.lead_id


def command_id_for(*parts: str) -> str:
    """A deterministic id for any non-message command, built like :func:`nudge_id_for`."""
    return "c_" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def fan_out(cmd: NudgeTeam, rep_ids: list[str]) -> list[NudgeCommand]:
    """One :class:`NudgeCommand` per team member, each with its own deterministic id."""
    return [
        NudgeCommand(
            nudge_id=nudge_id_for(cmd.playbook, f"{cmd.rule}@{rep}", cmd.lead_id, cmd.command_id),
            rep_id=rep,
            lead_id=cmd.lead_id,
            channel=cmd.channel,
            text=cmd.text,
            reasons=cmd.reasons,
            playbook=cmd.playbook,
            rule=cmd.rule,
            trigger_event_id=cmd.trigger_event_id,
            created_at=cmd.created_at,
            priority=cmd.priority,
            quiet_hours=cmd.quiet_hours,
        )
        for rep in sorted(set(rep_ids))
    ]


def nudge_id_for(playbook: str, rule: str, lead_id: str, trigger_event_id: str) -> str:
    """The deterministic id of a nudge: the same trigger never yields two nudges."""
    key = "\x1f".join((playbook, rule, lead_id, trigger_event_id)).encode()
    return "n_" + hashlib.sha256(key).hexdigest()[:24]


def ensure_aware(value: dt.datetime) -> dt.datetime:
    """Refuse naive datetimes at the boundary instead of guessing their zone."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: a timezone is required")
    return value


ReplyKind = Literal["message", "action", "opt_out", "opt_in", "help"]
"""What a reply is: free text, a button click, or one of the SMS keywords."""


class Reply(_Model):
    """One answer from a rep, from any channel, as the ``replies`` topic carries it.

    ``reply_id`` is the provider's own id (Twilio MessageSid, Slack event id or
    action timestamp), so a webhook the provider retries is recognised as the
    same reply downstream. ``rep_id`` is None when the sender matched no rep; the
    raw address is kept in ``sender`` either way.
    """

    reply_id: str
    rep_id: str | None = None
    sender: str = Field(description="phone number (E.164) or Slack user id it came from")
    channel: Literal["sms", "slack", "console"]
    kind: ReplyKind = "message"
    text: str = ""
    received_at: AwareDatetime
    action: str | None = Field(
        default=None, description="button clicked: log_call, snooze, not_relevant or choice"
    )
    choice: str | None = Field(default=None, description="questionnaire choice clicked")
    nudge_id: str | None = Field(default=None, description="the nudge a click answers")
    lead_id: str | None = None

"""The playbook language: pydantic models with ``extra="forbid"``.

A playbook is a YAML file with a name, an owner and rules; each rule has one
trigger, optional conditions and a list of actions. This first version knows
one trigger (``score.crossed_above``) and one action (``nudge``); each new kind
is one more model joined into the discriminated unions below.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScoreCrossedAbove(_Model):
    """Fires when a lead's score goes from below ``value`` to at or above it."""

    type: Literal["score.crossed_above"]
    value: float = Field(gt=0, le=1)


Trigger = Annotated[ScoreCrossedAbove, Field(discriminator="type")]


class NudgeAction(_Model):
    """Text a rep about the lead."""

    type: Literal["nudge"]
    to: Literal["owner"] = "owner"
    channel: Literal["best", "sms", "slack"] = "best"
    template: str = Field(min_length=1, max_length=1600)


Action = Annotated[NudgeAction, Field(discriminator="type")]


class Rule(_Model):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str | None = None
    trigger: Trigger
    actions: list[Action] = Field(min_length=1)
    priority: int = 0


class Playbook(_Model):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    owner: str = Field(min_length=1)
    version: int = Field(ge=1)
    enabled: bool = True
    rules: list[Rule] = Field(min_length=1)

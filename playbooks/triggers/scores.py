"""Which score a score trigger watches: ``score: conversion`` (default), ``churn`` or
``cross_sell.<product>`` (``cross_sell:<product>`` is read the same)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from nudge.signals import LeadSignal, Score, ScorePoint

CONVERSION = "conversion"
SCORE_NAME = r"^(conversion|churn|cross_sell[.:][a-z0-9][a-z0-9_-]*)$"
"""The names a trigger's ``score:`` accepts (products as the catalogue spells them)."""


def target_of(name: str) -> str:
    """The target a ``score:`` name means: ``cross_sell.payroll`` → ``cross_sell:payroll``."""
    if not re.match(SCORE_NAME, name):
        raise ValueError(f"unknown score {name!r}: use conversion, churn or cross_sell.<product>")
    return name.replace("cross_sell.", "cross_sell:", 1)


def score_key(target: str) -> str:
    """The field a target's score is read at: ``score``, ``score.churn``,
    ``score.cross_sell.payroll``."""
    if target == CONVERSION:
        return "score"
    return "score." + target.replace(":", ".", 1)


@dataclass(frozen=True)
class Watched:
    """One of the lead's scores, as a score trigger reads it."""

    score: Score
    history: list[ScorePoint]
    first_scored_at: dt.datetime | None


def watched(signal: LeadSignal, target: str) -> Watched | None:
    """The lead's score for ``target`` on this signal; None if the lead has none."""
    if target == CONVERSION:
        return Watched(signal.score, signal.history, signal.first_scored_at)
    found = signal.targets.get(target)
    if found is None:
        return None
    return Watched(found.score, found.history, found.first_scored_at)

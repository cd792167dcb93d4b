"""Live scores for the targets beyond conversion: churn, and cross-sell per product.

A worker scores every lead with the promoted conversion model (or the points scorer);
this adds, for each *customer* (:meth:`scoring.targets.Catalogue.is_customer`), one score
per other target of the product catalogue whose model is promoted and trusted:

* ``churn`` — P(the customer leaves or downgrades within the model's horizon);
* ``cross_sell:<product>`` — P(the customer buys the product within the horizon), with
  ``expected_value`` = probability × the product's catalogue value.

A target's question ends for a lead when its outcome happens (the catalogue's purchase or
churn rule matches one of its events): the lead is not scored for it again, and churn ends
every question. Nothing guesses: a target with no promoted model, or one trained on fewer
than ``NUDGE_MIN_CONVERSIONS`` outcomes, scores no lead (:attr:`TargetScorer.notes` says
why). The scores are kept on the lead (:meth:`scoring.state.LeadState.record_target_score`)
and reach the playbooks in :attr:`nudge.signals.LeadSignal.targets`.

Why its own registry per target and not one model with a target input: each question has
its own outcomes, horizon and history; one model per target is trained, evaluated,
promoted and rolled back on its own (``nudge model train --target churn``).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from pathlib import Path

from nudge.errors import NudgeError
from nudge.events import LeadEvent
from nudge.signals import Score
from scoring.model_scorer import CompiledModel
from scoring.registry import Registry
from scoring.state import LeadState
from scoring.targets import CHURN, CONVERSION, Catalogue, Target, all_targets


class TargetScorer:
    """The promoted models of every non-conversion target, and how a lead is scored by them."""

    def __init__(
        self,
        data_dir: Path | str,
        catalogue: Catalogue,
        *,
        min_positives: int,
        non_actionable: list[str],
        check_every: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.catalogue = catalogue
        self.targets: list[Target] = [t for t in all_targets(catalogue) if t.name != CONVERSION]
        self.registries = {t.name: Registry(data_dir, t.name) for t in self.targets}
        self.min_positives = min_positives
        self.non_actionable = non_actionable
        self.check_every = check_every
        self._monotonic = monotonic
        self._next_check = -math.inf
        self.models: dict[str, CompiledModel] = {}
        self.notes: dict[str, str] = {t.name: "no model promoted yet" for t in self.targets}
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        """Load the models promoted since the last look (one ``stat`` per target)."""
        self._next_check = self._monotonic() + self.check_every
        for name, registry in self.registries.items():
            changed, version = registry.current()
            if changed or force:
                self._load(name, registry, version)

    def _load(self, name: str, registry: Registry, version: str | None) -> None:
        if version is None:
            self.models.pop(name, None)
            self.notes[name] = "no model promoted yet"
            return
        try:
            info = registry.get(version)
            if info.positives < self.min_positives:
                self.models.pop(name, None)
                self.notes[name] = (
                    f"model {version} was trained on {info.positives} outcomes; "
                    f"{self.min_positives} are needed (NUDGE_MIN_CONVERSIONS): nothing scored"
                )
                return
            self.models[name] = CompiledModel.load(registry, info, self.non_actionable)
            self.notes[name] = f"model {version}"
        except (OSError, ValueError, KeyError, NudgeError) as exc:
            kept = self.models.get(name)
            self.notes[name] = (
                f"could not load model {version}, still using "
                f"{kept.version if kept else 'none'}: {exc}"
            )

    @property
    def versions(self) -> dict[str, str]:
        """Target → the version of the model scoring it."""
        return {name: m.version for name, m in self.models.items()}

    def update(self, state: LeadState, event: LeadEvent) -> None:
        """After ``apply_event(state, event)``: close the targets ``event`` answers, then
        score the lead for every open target with a model, if the lead is a customer."""
        for t in self.targets:
            if t.outcome(event) is not None:
                for name in [t.name] if t.name != CHURN else [x.name for x in self.targets]:
                    state.close_target(name)
        if self._monotonic() >= self._next_check:
            self.refresh()
        if not self.models or not self.catalogue.is_customer(state.profile):
            return
        at = state.features["at"] or event.occurred_at.timestamp()
        for t in self.targets:
            model = self.models.get(t.name)
            if model is None or t.name in state.closed:
                continue
            state.record_target_score(t.name, self.score(model, t, state, at))

    def score(self, model: CompiledModel, target: Target, state: LeadState, at: float) -> Score:
        """One target's score for the lead as of ``at`` (epoch seconds)."""
        p, reasons = model.explain(model.vector(state, at))
        p = round(min(max(p, 0.0), 1.0), 4)
        kept = state.targets.get(target.name)
        worth = target.value if target.name != CHURN else state.profile.get("deal_value")
        return Score(
            value=p,
            previous=kept["score"]["value"] if kept else None,
            reasons=reasons,
            model_version=model.version,
            rule_based=False,
            expected_value=round(p * float(worth), 2) if worth else None,
            scored_at=dt.datetime.fromtimestamp(at, dt.UTC),
        )

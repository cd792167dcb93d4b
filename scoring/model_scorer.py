"""Live scoring with the promoted XGBoost model, and the switch from the points scorer.

:class:`ModelScorer` scores one lead from its feature state: feature vector
(:func:`scoring.features.feature_vector`), our own tree walk
(:class:`scoring.trees.CompiledTrees`, no DataFrame, no DMatrix), calibration, and the
top three reasons from the walk's path attributions, worded by the feature catalogue.

:class:`LiveScorer` is what a worker constructs once::

    scorer = LiveScorer(settings.data_dir)          # or LiveScorer(dir, fallback=points)
    score = scorer.rescore(state, event, now)       # after apply_event(state, event)

It looks at the registry at most once a second (one ``stat``) and swaps in a newly
promoted model without a restart. While no model is promoted, or the promoted one was
trained on fewer than ``min_conversions`` conversions, the points scorer scores and the
score says ``rule_based=True``.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nudge.errors import NudgeError
from nudge.events import LeadEvent
from nudge.settings import Settings
from nudge.signals import Score
from scoring.features import compile_extractors, describe, family_of, feature_vector
from scoring.points import PointsScorer, load_points_config
from scoring.registry import ModelInfo, Registry
from scoring.state import LeadState
from scoring.trees import CompiledTrees, sigmoid

if TYPE_CHECKING:
    from scoring.target_scorer import TargetScorer

MIN_REASON = 0.1
"""A feature is a reason only if it raised this lead's log-odds by at least this much
(0.1 ≈ 2.5 points at a 50 % score): smaller pushes are noise a rep should not read."""

P_MIN, P_MAX = 0.001, 0.999
"""Calibrated scores are kept inside these bounds: an isotonic bin with no positives in the
validation data says "rarely", not "never", and a rep should never read "100 %"."""


class Calibrator:
    """Maps a raw model probability to a calibrated one (isotonic or Platt), or not at all."""

    def __init__(self, spec: dict[str, Any] | None) -> None:
        self.kind = (spec or {}).get("kind", "none")
        spec = spec or {}
        if self.kind == "isotonic":
            self.x = np.asarray(spec["x"], dtype=np.float64)
            self.y = np.asarray(spec["y"], dtype=np.float64)
        elif self.kind == "platt":
            self.a, self.b = float(spec["a"]), float(spec["b"])

    def __call__(self, margin: float) -> float:
        if self.kind == "isotonic":
            p = float(np.interp(sigmoid(margin), self.x, self.y))
        elif self.kind == "platt":
            p = sigmoid(self.a * margin + self.b)
        else:
            p = sigmoid(margin)
        return min(max(p, P_MIN), P_MAX)

    def many(self, margins: np.ndarray) -> np.ndarray:
        out: np.ndarray
        if self.kind == "isotonic":
            out = np.interp(1 / (1 + np.exp(-margins)), self.x, self.y)
        elif self.kind == "platt":
            out = 1 / (1 + np.exp(-(self.a * margins + self.b)))
        else:
            out = 1 / (1 + np.exp(-margins))
        return np.clip(out, P_MIN, P_MAX)


class CompiledModel:
    """A registered model ready for one-row scoring."""

    def __init__(
        self,
        booster_json: bytes,
        meta: dict[str, Any],
        non_actionable: Iterable[str] = ("deal_value", "age_days", "employees", "events_total"),
    ) -> None:
        self.version: str = meta.get("version", "unversioned")
        self.names: list[str] = list(meta["features"])
        self.positives = int(meta.get("positives", 0))
        self.trees = CompiledTrees.from_booster_json(booster_json, len(self.names))
        self.extractors = compile_extractors(self.names)
        self.calibrate = Calibrator(meta.get("calibration"))
        # one-hot levels of a CRM field form one reason ("industry is software"), not
        # several ("industry is not retail"): contributions are summed per field
        groups: dict[str, int] = {}
        self.group_of = np.asarray(
            [
                groups.setdefault(n.split("=", 1)[0] if "=" in n else n, len(groups))
                for n in self.names
            ],
            dtype=np.int64,
        )
        self.members: list[list[int]] = [[] for _ in groups]
        for i, g in enumerate(self.group_of):
            self.members[int(g)].append(i)
        self.grouping = np.zeros((len(self.names), len(groups)), dtype=np.float64)
        self.grouping[np.arange(len(self.names)), self.group_of] = 1.0
        blocked = set(non_actionable)
        self.actionable = np.asarray([name not in blocked for name in groups], dtype=np.bool_)

    @classmethod
    def load(
        cls, registry: Registry, info: ModelInfo, non_actionable: Iterable[str] | None = None
    ) -> CompiledModel:
        if non_actionable is None:
            return cls(registry.load_booster_json(info.version), info.meta)
        return cls(registry.load_booster_json(info.version), info.meta, non_actionable)

    def vector(self, state: LeadState, now: float) -> np.ndarray:
        row = feature_vector(state.features, state.profile, self.extractors, now)
        return np.asarray(row, dtype=np.float32)

    def predict(self, x: np.ndarray) -> float:
        return self.calibrate(self.trees.margin(x))

    def explain(self, x: np.ndarray, top: int = 3) -> tuple[float, list[str]]:
        """Calibrated probability and the plain-word reasons that pushed it up most.

        A reason is a field that raised this lead's score by at least :data:`MIN_REASON`
        log-odds, that the team did not mark non-actionable (``NUDGE_NON_ACTIONABLE``:
        deal value, lead age, ...), and that says something happened: an absence ("no
        CRM records in the last day", "no demo request yet") is never a reason. When
        nothing qualifies the list is empty — better no reason than a misleading one.
        """
        (p,), (reasons,) = self.explain_many(x.reshape(1, -1), top)
        return p, reasons

    def explain_many(self, rows: np.ndarray, top: int = 3) -> tuple[list[float], list[list[str]]]:
        """:meth:`explain` for many rows (n, features) with one tree walk."""
        margins, contribs, _bias = self.trees.margins_and_contribs(rows)
        per_group = contribs @ self.grouping  # (n, groups): a CRM field's levels summed
        out: list[list[str]] = []
        for x, weights in zip(rows, per_group, strict=True):
            chosen: list[int] = []
            for g in np.argsort(-weights):
                if weights[g] < MIN_REASON or len(chosen) == top:
                    break
                if self.actionable[g] and self._present(int(g), x):
                    chosen.append(int(g))
            out.append([self._describe_group(g, x) for g in chosen])
        return [float(p) for p in self.calibrate.many(margins)], out

    def _present(self, group: int, x: np.ndarray) -> bool:
        """True when the group's value says something happened (non-zero, not missing)."""
        members = self.members[group]
        if len(members) > 1:
            return any(x[i] >= 0.5 for i in members)
        v = float(x[members[0]])
        if math.isnan(v):
            return False
        if family_of(self.names[members[0]]) in {"count", "call_minutes"}:
            return round(v) >= 1  # a decayed 0.3 reads "no ... in the last day"
        return v != 0.0

    def _describe_group(self, group: int, x: np.ndarray) -> str:
        members = self.members[group]
        if len(members) == 1:
            return describe(self.names[members[0]], float(x[members[0]]))
        active = next((i for i in members if x[i] >= 0.5), None)
        if active is not None:
            return describe(self.names[active], 1.0)
        field = self.names[members[0]].split("=", 1)[0]
        return f"{field} is none of the usual ones"


class ModelScorer:
    """Scores a lead with one compiled model (see :class:`LiveScorer` for switching)."""

    def __init__(self, model: CompiledModel) -> None:
        self.model = model
        self.version = model.version

    def _score(self, state: LeadState, p: float, t: float, reasons: list[str]) -> Score:
        p = round(min(max(p, 0.0), 1.0), 4)
        deal_value = state.profile.get("deal_value")
        return Score(
            value=p,
            previous=state.score["value"] if state.score else None,
            reasons=reasons,
            model_version=self.version,
            rule_based=False,
            expected_value=round(p * float(deal_value), 2) if deal_value else None,
            scored_at=dt.datetime.fromtimestamp(t, dt.UTC),
        )

    def rescore(self, state: LeadState, event: LeadEvent, now: dt.datetime) -> Score:
        """Score ``state`` (features already folded in by ``apply_event``) as of the event."""
        t = state.features["at"] or event.occurred_at.timestamp()
        p, reasons = self.model.explain(self.model.vector(state, t))
        return self._score(state, p, t, reasons)

    def rescore_batch(
        self, items: Sequence[tuple[LeadState, LeadEvent]], now: dt.datetime
    ) -> list[Score]:
        """:meth:`rescore` for many leads at once (each lead at most once), in one tree
        walk and without reasons: wording them costs several times the score, and most
        scores reach no rule. :meth:`reasons` words the ones that do."""
        if not items:
            return []
        ts = [state.features["at"] or event.occurred_at.timestamp() for state, event in items]
        rows = np.stack(
            [self.model.vector(state, t) for (state, _), t in zip(items, ts, strict=True)]
        )
        ps = self.model.calibrate.many(self.model.trees.margins(rows))
        return [
            self._score(state, float(p), t, [])
            for (state, _), p, t in zip(items, ps, ts, strict=True)
        ]

    def reasons(self, states: Sequence[LeadState]) -> list[list[str]]:
        """The reasons of each state's current score, as :meth:`rescore` words them: from
        the features as of the time it was scored (a score from another model: none)."""
        todo = [
            i for i, s in enumerate(states) if s.score and s.score["model_version"] == self.version
        ]
        out: list[list[str]] = [[] for _ in states]
        if not todo:
            return out
        rows = np.stack([self.model.vector(states[i], self._scored_at(states[i])) for i in todo])
        for i, words in zip(todo, self.model.explain_many(rows)[1], strict=True):
            out[i] = words
        return out

    @staticmethod
    def _scored_at(state: LeadState) -> float:
        assert state.score is not None
        at = state.features["at"]
        if at is not None:
            return float(at)
        return dt.datetime.fromisoformat(state.score["scored_at"]).timestamp()

    def score_at(self, state: LeadState, now: dt.datetime) -> Score:
        """The lead's score as of ``now`` with no new event (time-decayed features)."""
        t = max(now.timestamp(), state.features["at"] or 0.0)
        p, reasons = self.model.explain(self.model.vector(state, t))
        return self._score(state, p, t, reasons)

    def rescore_many(self, states: list[LeadState], now: dt.datetime) -> list[float]:
        """Calibrated probabilities for many leads at once (no reasons): for batch
        re-ranking, e.g. after a promotion, at ~10 µs a lead instead of ~60 µs."""
        if not states:
            return []
        t = now.timestamp()
        rows = np.stack([self.model.vector(s, t) for s in states])
        return [float(v) for v in self.model.calibrate.many(self.model.trees.margins(rows))]


class LiveScorer:
    """The worker's scorer: the promoted model when trusted, else the points scorer."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        fallback: PointsScorer | None = None,
        min_conversions: int | None = None,
        non_actionable: list[str] | None = None,
        check_every: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        targets: TargetScorer | None = None,
    ) -> None:
        self.registry = Registry(data_dir)
        self.targets = targets
        """The other targets' models (churn, cross-sell): :meth:`rescore` keeps the lead's
        scores for them current too (``state.targets``)."""
        self.fallback = fallback or PointsScorer()
        if min_conversions is None or non_actionable is None:
            settings = Settings()
            if min_conversions is None:
                min_conversions = settings.min_conversions
            if non_actionable is None:
                non_actionable = list(settings.non_actionable)
        self.min_conversions: int = min_conversions
        self.non_actionable: list[str] = list(non_actionable)
        self.check_every = check_every
        self._monotonic = monotonic
        self._next_check = -math.inf
        self.model_scorer: ModelScorer | None = None
        self.note: str = "no model promoted yet"
        self.refresh(force=True)

    @classmethod
    def from_settings(cls, settings: Any) -> LiveScorer:
        """The scorer a worker with ``settings`` uses (also what ``simulate`` replays with):
        conversion, and every target of the product catalogue (``NUDGE_PRODUCTS``)."""
        from scoring.target_scorer import TargetScorer
        from scoring.targets import load_catalogue

        return cls(
            settings.data_dir,
            fallback=PointsScorer(load_points_config(settings.scoring_rules)),
            min_conversions=settings.min_conversions,
            non_actionable=list(settings.non_actionable),
            targets=TargetScorer(
                settings.data_dir,
                load_catalogue(settings.products),
                min_positives=settings.min_conversions,
                non_actionable=list(settings.non_actionable),
            ),
        )

    @property
    def version(self) -> str:
        return self.model_scorer.version if self.model_scorer else self.fallback.version

    def refresh(self, force: bool = False) -> bool:
        """Reload if the promoted model changed; True when the active scorer changed.

        A promoted model that cannot be loaded (deleted folder, corrupt file) never stops
        scoring: the scorer in use stays, and :attr:`note` says why.
        """
        self._next_check = self._monotonic() + self.check_every
        changed, version = self.registry.current()
        if not (changed or force):
            return False
        before = self.version
        if version is None:
            self.model_scorer, self.note = None, "no model promoted yet"
            return self.version != before
        try:
            info = self.registry.get(version)
            if info.positives < self.min_conversions:
                self.model_scorer = None
                self.note = (
                    f"model {version} was trained on {info.positives} conversions; "
                    f"{self.min_conversions} are needed (NUDGE_MIN_CONVERSIONS)"
                )
            else:
                self.model_scorer = ModelScorer(
                    CompiledModel.load(self.registry, info, self.non_actionable)
                )
                self.note = f"model {version}"
        except (OSError, ValueError, KeyError, NudgeError) as exc:
            self.note = f"could not load model {version}, still using {before}: {exc}"
        return self.version != before

    def score_at(self, state: LeadState, now: dt.datetime) -> Score:
        """The score as of ``now`` (no event), by whichever scorer is active."""
        if self._monotonic() >= self._next_check:
            self.refresh()
        if self.model_scorer is None:
            return self.fallback.score_at(state, now)
        return self.model_scorer.score_at(state, now)

    def rescore(self, state: LeadState, event: LeadEvent, now: dt.datetime) -> Score:
        """The conversion score; the lead's other targets' scores are updated in ``state``."""
        if self._monotonic() >= self._next_check:
            self.refresh()
        if self.targets is not None:
            self.targets.update(state, event)
        if self.model_scorer is None:
            return self.fallback.rescore(state, event, now)
        self.fallback.update(state, event)  # keep the points current for a rollback
        return self.model_scorer.rescore(state, event, now)

    def rescore_batch(
        self, items: Sequence[tuple[LeadState, LeadEvent]], now: dt.datetime
    ) -> list[Score]:
        """:meth:`rescore` for many leads at once; a model's scores come unworded
        (:meth:`words_later`), the points scorer's with their reasons; the leads' other
        targets' scores are updated in each state, as :meth:`rescore` does."""
        if self._monotonic() >= self._next_check:
            self.refresh()
        if self.targets is not None:
            for state, event in items:
                self.targets.update(state, event)
        if self.model_scorer is None:
            return self.fallback.rescore_batch(items, now)
        for state, event in items:
            self.fallback.update(state, event)
        return self.model_scorer.rescore_batch(items, now)

    def words_later(self, score: Score) -> bool:
        """True when ``score`` came from :meth:`rescore_batch` without its reasons."""
        return not score.rule_based

    def reasons(self, states: Sequence[LeadState]) -> list[list[str]]:
        """The reasons of each state's current score (see :meth:`ModelScorer.reasons`)."""
        if self.model_scorer is None:
            return self.fallback.reasons(states)
        return self.model_scorer.reasons(states)

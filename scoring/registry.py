"""The model registry: versioned models on disk, promotion, rollback, hot switch.

Layout under ``<data_dir>/models/``::

    <version>/model.json    the XGBoost booster (``save_model`` JSON)
    <version>/meta.json     features, metrics, data window, trained_at, positives,
                            calibration, training parameters
    PROMOTED                the promoted version's name (one line)
    HISTORY                 every promotion and rollback, oldest first:
                            "<iso time> promote <version>" / "<iso time> rollback"
                            / "<iso time> retire" (no model any more)

Why files and not a database: a model is trained on one machine and read by every
worker; a directory can be copied, inspected and backed up with ordinary tools.
``PROMOTED`` is replaced atomically (write + ``os.replace``), so a worker never reads a
half-written name. A running worker calls :meth:`Registry.current` — one ``stat`` of
``PROMOTED`` — and reloads only when its modification time changed, which is how a
promotion reaches workers without a restart.

Targets: conversion models live directly under ``models/`` (as before targets existed);
every other target has its own registry in ``models/<target>/`` (``churn``,
``cross_sell-<product>``), with its own ``PROMOTED`` and ``HISTORY``, so promoting a
churn model never touches the conversion model. ``Registry(data_dir, target)``.

Cold start: a model trained on fewer than ``min_conversions`` positive outcomes is
not trusted; :class:`scoring.model_scorer.LiveScorer` keeps the points scorer until one
that has enough is promoted (setting ``NUDGE_MIN_CONVERSIONS``, default 50).
"""

from __future__ import annotations

import builtins
import datetime as dt
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nudge.errors import ConfigError


@dataclass(frozen=True)
class ModelInfo:
    """One registered model: its version, folder and metadata."""

    version: str
    path: Path
    meta: dict[str, Any]

    @property
    def positives(self) -> int:
        return int(self.meta.get("positives", 0))

    @property
    def features(self) -> list[str]:
        return list(self.meta["features"])


class Registry:
    """Versioned models under ``<data_dir>/models``."""

    def __init__(self, data_dir: Path | str, target: str = "conversion") -> None:
        self.target = target
        base = Path(data_dir) / "models"
        self.root = base if target == "conversion" else base / target.replace(":", "-")
        self._pointer = self.root / "PROMOTED"
        self._history = self.root / "HISTORY"
        self._seen_mtime: int | None = -1
        self._seen_version: str | None = None

    # -- writing ---------------------------------------------------------------
    def save(self, booster_json: bytes, meta: dict[str, Any], now: dt.datetime) -> ModelInfo:
        """Store a new model and return it; it is not promoted."""
        version = now.strftime("m%Y%m%dT%H%M%SZ-") + secrets.token_hex(2)
        path = self.root / version
        path.mkdir(parents=True, exist_ok=False)
        (path / "model.json").write_bytes(booster_json)
        meta = {**meta, "version": version}
        (path / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        return ModelInfo(version, path, meta)

    def promote(self, version: str, now: dt.datetime) -> ModelInfo:
        """Make ``version`` the one workers use. Raises ConfigError if it does not exist."""
        info = self.get(version)
        self._log(now, f"promote {version}")
        self._write_pointer(version)
        return info

    def rollback(self, now: dt.datetime) -> ModelInfo | None:
        """Undo the last promotion: the model promoted before it comes back.

        Promotions form a stack, so repeated rollbacks walk back through them. Rolling
        back the first promotion removes ``PROMOTED``: the points scorer takes over again.
        Returns the model now in use, or None.
        """
        stack = self.history()
        if not stack:
            return None
        self._log(now, "rollback")
        stack.pop()
        if not stack:
            self._pointer.unlink(missing_ok=True)
            return None
        self._write_pointer(stack[-1])
        return self.get(stack[-1])

    def install(self, version: str, booster_json: bytes, meta: dict[str, Any]) -> ModelInfo:
        """Store a model made elsewhere under its own ``version`` (a worker on another host
        taking a published model, :mod:`streams.model_sync`); not promoted. Idempotent."""
        path = self.root / version
        if (path / "meta.json").is_file():
            return self.get(version)
        tmp = self.root / f".{version}.tmp{os.getpid()}"
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "model.json").write_bytes(booster_json)
        (tmp / "meta.json").write_text(json.dumps({**meta, "version": version}, indent=2))
        os.replace(tmp, path)  # whole or not at all: list() never sees half a model
        return self.get(version)

    def retire(self, now: dt.datetime) -> None:
        """No model promoted any more (the points scorer, for conversion, takes over)."""
        self._log(now, "retire")
        self._pointer.unlink(missing_ok=True)

    def _log(self, now: dt.datetime, entry: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with self._history.open("a") as fh:
            fh.write(f"{now.isoformat()} {entry}\n")

    def _write_pointer(self, version: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._pointer.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(version + "\n")
        os.replace(tmp, self._pointer)

    # -- reading ---------------------------------------------------------------
    def get(self, version: str) -> ModelInfo:
        path = self.root / version
        meta_file = path / "meta.json"
        if not meta_file.is_file():
            known = ", ".join(m.version for m in self.list()) or "none"
            raise ConfigError(f"model {version!r} not found in {self.root} (known: {known})")
        return ModelInfo(version, path, json.loads(meta_file.read_text()))

    def list(self) -> builtins.list[ModelInfo]:
        """Every registered model, oldest first."""
        if not self.root.is_dir():
            return []
        return [
            ModelInfo(p.name, p, json.loads((p / "meta.json").read_text()))
            for p in sorted(self.root.iterdir())
            if p.is_dir() and (p / "meta.json").is_file()
        ]

    def history(self) -> builtins.list[str]:
        """The promotion stack, oldest first: what ``rollback`` walks back through."""
        if not self._history.is_file():
            return []
        stack: builtins.list[str] = []
        for line in self._history.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "promote":
                stack.append(parts[2])
            elif len(parts) == 2 and parts[1] == "rollback" and stack:
                stack.pop()
            elif len(parts) == 2 and parts[1] == "retire":
                stack.clear()
        return stack

    def promoted_version(self) -> str | None:
        try:
            return self._pointer.read_text().strip() or None
        except FileNotFoundError:
            return None

    def current(self) -> tuple[bool, str | None]:
        """Cheap check for workers: ``(changed, version)``; one ``stat`` when unchanged."""
        try:
            mtime: int | None = self._pointer.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime == self._seen_mtime:
            return False, self._seen_version
        self._seen_mtime = mtime
        version = self.promoted_version() if mtime is not None else None
        changed = version != self._seen_version
        self._seen_version = version
        return changed, version

    def load_booster_json(self, version: str) -> bytes:
        return (self.root / version / "model.json").read_bytes()

"""``nudge model evaluate``: train and judge the model on any labelled table.

Why: before trusting Nudge with live leads, a data person wants to know how well this
kind of model does on *their* history, and whether a column is cheating. This module
reads a CSV (plain or gzip, delimiter sniffed), fits it with :func:`scoring.learn.fit`
— the same fitting, imbalance handling, early stopping and calibration as ``train`` —
and reports two honest figures side by side:

* ``cv``: 5-fold stratified cross-validation (random folds; the figure papers quote);
* ``time_split``: train on the first 80 % in time (by ``--time-column`` or row order),
  test on the last 20 % — what a model deployed at that moment would have scored.

Leaks: a column known only after the outcome (the bank data's call ``duration``) makes
a model look excellent and be useless. We warn when one column alone nearly decides the
label (single-column ROC AUC ≥ 0.9), and when the model leans on one column so heavily
that dropping it costs ≥ 0.05 AUC on the time split while it alone scores ≥ 0.75.

Columns: a column whose non-empty values all parse as numbers is numeric; any other is
categorical, one-hot encoded (its 50 most frequent values; the rest share one column).
Empty, ``NA`` and ``unknown``-like markers are kept as their own category for
categoricals and as missing for numbers. Stray markers (``?``, ``NA``, ``-``, ``n/a``,
...) in a column that is otherwise all numbers would make it categorical — 60 levels of
"numbers as text" instead of one number; they are read as missing, with a warning
naming the column, the marker and how often it appeared. A column that is nearly all
numbers but has other text is kept categorical, with a warning.

Beside every AUC, ``evaluate`` reports the probability checks of
:mod:`scoring.reliability` (reliability table, Brier against the constant-rate guess,
AUC interval) for cross-validation and the time split.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from nudge.errors import ConfigError
from scoring.learn import Fitted, fit, metrics
from scoring.reliability import format_honesty, honesty

TRUE = {"1", "1.0", "true", "yes", "y", "t"}
FALSE = {"0", "0.0", "false", "no", "n", "f"}
MISSING = {"", "na", "nan", "null", "none"}
MARKERS = {"?", "??", "-", "--", ".", "na", "n/a", "#n/a", "nan", "null", "none", "missing"}
"""Stray markers read as missing in an otherwise numeric column (with a warning)."""
NEARLY_NUMERIC = 0.95
MAX_LEVELS = 50
LEAK_SINGLE_AUC = 0.9
LEAK_DROP_AUC = 0.05
MIN_PER_CLASS = 25


@dataclass
class Table:
    """A CSV turned into a float matrix, with the names of its encoded columns."""

    x: np.ndarray
    y: np.ndarray
    names: list[str]
    source: list[str]
    """For each encoded column, the CSV column it came from."""
    order: np.ndarray
    """Row indices in time order (by the time column, else file order)."""
    warnings: list[str] = field(default_factory=list)
    """What reading the file changed or doubted (stray markers read as missing, ...)."""


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a .csv or .csv.gz file, delimiter sniffed."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if not text.strip():
        raise ConfigError(f"{path}: the file is empty")
    try:
        dialect: Any = csv.Sniffer().sniff(text[:20000], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = [h.strip() for h in next(reader)]
    rows = [r for r in reader if r]
    bad = next((i for i, r in enumerate(rows) if len(r) != len(header)), None)
    if bad is not None:
        raise ConfigError(
            f"{path}: line {bad + 2} has {len(rows[bad])} fields, the header has {len(header)}"
        )
    return header, rows


def load_table(
    path: Path, label: str, time_column: str | None = None, drop: list[str] | None = None
) -> Table:
    """Read and encode ``path``; errors name the file and the column."""
    header, rows = read_rows(path)
    for name, what in [(label, "label"), (time_column, "time")] + [
        (d, "--drop") for d in drop or []
    ]:
        if name is not None and name not in header:
            raise ConfigError(
                f"{path}: no {what} column {name!r}; the columns are: {', '.join(header)}"
            )
    li = header.index(label)
    y = np.empty(len(rows))
    for n, row in enumerate(rows):
        v = row[li].strip().lower()
        if v in TRUE:
            y[n] = 1
        elif v in FALSE:
            y[n] = 0
        else:
            raise ConfigError(
                f"{path}: label column {label!r} must be 0/1, true/false or yes/no; "
                f"line {n + 2} has {row[li]!r}"
            )
    if len(np.unique(y)) < 2:
        raise ConfigError(f"{path}: label column {label!r} has only one value")
    fewest = int(min(y.sum(), len(y) - y.sum()))
    if fewest < MIN_PER_CLASS:
        raise ConfigError(
            f"{path}: label column {label!r} has only {fewest} rows of its rarer value; "
            f"5-fold CV with a validation slice needs at least {MIN_PER_CLASS}"
        )
    skip = {label, *(drop or [])}
    if time_column:
        skip.add(time_column)
        order = np.asarray(
            sorted(range(len(rows)), key=lambda i: _sortable(rows[i][header.index(time_column)])),
            dtype=np.int64,
        )
    else:
        order = np.arange(len(rows))
    columns: list[np.ndarray] = []
    names: list[str] = []
    source: list[str] = []
    notes: list[str] = []
    for ci, col in enumerate(header):
        if col in skip:
            continue
        values = [r[ci].strip() for r in rows]
        numbers = _as_numbers(values, col, notes)
        if numbers is not None:
            columns.append(numbers)
            names.append(col)
            source.append(col)
            continue
        counts: dict[str, int] = {}
        for v in values:
            counts[v] = counts.get(v, 0) + 1
        levels = sorted(counts, key=lambda v: (-counts[v], v))
        keep = levels[:MAX_LEVELS]
        for level in keep:
            columns.append(np.asarray([1.0 if v == level else 0.0 for v in values]))
            names.append(f"{col}={level}")
            source.append(col)
        if len(levels) > MAX_LEVELS:
            kept = set(keep)
            columns.append(np.asarray([0.0 if v in kept else 1.0 for v in values]))
            names.append(f"{col}=(other)")
            source.append(col)
    if not columns:
        raise ConfigError(f"{path}: no feature columns left after the label and --drop")
    x = np.column_stack(columns).astype(np.float32)
    return Table(x, y, names, source, order, notes)


def _as_numbers(
    values: list[str], column: str = "", notes: list[str] | None = None
) -> np.ndarray | None:
    """The column as floats (NaN for missing), or None when it is categorical.

    Stray markers in an otherwise numeric column are read as missing and noted; a column
    that is nearly all numbers but has other text stays categorical and is noted.
    """
    out = np.empty(len(values))
    strays: dict[str, int] = {}
    others: dict[str, int] = {}
    numeric = 0
    for i, v in enumerate(values):
        low = v.lower()
        if low == "":
            out[i] = math.nan
            continue
        try:
            out[i] = float(v)
            numeric += 1
            continue
        except ValueError:
            out[i] = math.nan
        if low in MARKERS:
            strays[v] = strays.get(v, 0) + 1
        else:
            others[v] = others.get(v, 0) + 1
    if numeric == 0:
        return None
    if others:
        if notes is not None and numeric >= NEARLY_NUMERIC * (numeric + sum(others.values())):
            shown = ", ".join(f"{k!r}" for k in sorted(others, key=lambda k: -others[k])[:3])
            notes.append(
                f"column {column!r} is {numeric / (numeric + sum(others.values())):.0%} "
                f"numbers but also has {shown}: read as categorical; fix those values "
                "or --drop it"
            )
        return None
    if strays and notes is not None:
        shown = ", ".join(f"{k!r} ({n})" for k, n in sorted(strays.items(), key=lambda kv: -kv[1]))
        notes.append(f"column {column!r}: the markers {shown} are read as missing numbers")
    return out


def _sortable(value: str) -> tuple[int, float | str]:
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)  # ISO dates sort as text


def _split_fit(x: np.ndarray, y: np.ndarray, seed: int, names: list[str]) -> Fitted:
    """Fit on x, y holding out their last 20 % (in the given order) for early stopping
    and calibration — the same recipe as ``train``."""
    n_fit = int(len(y) * 0.8)
    return fit(x[:n_fit], y[:n_fit], x[n_fit:], y[n_fit:], seed=seed, names=names)


def cross_validate(
    table: Table, folds: int = 5, seed: int = 0, log: TextIO | None = None
) -> dict[str, Any]:
    """Stratified k-fold: metrics on the pooled out-of-fold predictions, and per-fold AUCs."""
    p = np.empty(len(table.y))
    aucs = []
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (tr, te) in enumerate(skf.split(table.x, table.y)):
        rng = np.random.default_rng(seed + k)
        tr = rng.permutation(tr)
        fitted = _split_fit(table.x[tr], table.y[tr], seed, table.names)
        p[te] = fitted.predict(table.x[te])
        aucs.append(round(float(roc_auc_score(table.y[te], p[te])), 4))
        if log:
            print(f"cv fold {k + 1}/{folds}: ROC AUC {aucs[-1]}", file=log)
    out: dict[str, Any] = metrics(table.y, p)
    out["fold_roc_auc"] = aucs
    out["roc_auc_mean"] = round(float(np.mean(aucs)), 4)
    out["checks"] = honesty(table.y, p)
    return out


def time_split(
    table: Table, seed: int = 0
) -> tuple[dict[str, Any], Fitted, np.ndarray, np.ndarray]:
    """Train on the first 80 % in time, test on the rest; also return the model and test."""
    order = table.order
    n_train = int(len(order) * 0.8)
    tr, te = order[:n_train], order[n_train:]
    fitted = _split_fit(table.x[tr], table.y[tr], seed, table.names)
    p = fitted.predict(table.x[te])
    out: dict[str, Any] = metrics(table.y[te], p)
    out["checks"] = honesty(table.y[te], p)
    return out, fitted, table.y[te], p


def leak_warnings(table: Table, fitted: Fitted, base_auc: float, seed: int = 0) -> list[str]:
    """Columns that alone nearly decide the label, or that the model cannot do without."""
    warnings: list[str] = []
    single: dict[str, float] = {}
    for col in dict.fromkeys(table.source):
        idx = [i for i, s in enumerate(table.source) if s == col]
        single[col] = _single_auc(table, idx)
        if single[col] >= LEAK_SINGLE_AUC:
            warnings.append(
                f"column {col!r} alone predicts the label with ROC AUC {single[col]:.3f}: "
                "check it is known before the outcome, or --drop it"
            )
    gain: dict[str, float] = {}
    source_of = dict(zip(table.names, table.source, strict=True))
    for name, v in fitted.importance.items():
        gain[source_of[name]] = gain.get(source_of[name], 0.0) + v
    if gain:
        top = max(gain, key=lambda c: gain[c])
        if single.get(top, 0) >= 0.75 and single.get(top, 0) < LEAK_SINGLE_AUC:
            keep = [i for i, s in enumerate(table.source) if s != top]
            reduced = Table(
                table.x[:, keep],
                table.y,
                [table.names[i] for i in keep],
                [table.source[i] for i in keep],
                table.order,
            )
            without = time_split(reduced, seed)[0]["roc_auc"]
            if base_auc - without >= LEAK_DROP_AUC:
                warnings.append(
                    f"column {top!r} looks like a leak: the model leans on it most, it alone "
                    f"scores ROC AUC {single[top]:.3f}, and dropping it lowers the time-split "
                    f"AUC from {base_auc:.3f} to {without:.3f}; if it is only known after "
                    f"the outcome (like a call's duration), --drop it"
                )
    return warnings


def _single_auc(table: Table, idx: list[int]) -> float:
    y = table.y
    if len(idx) == 1:
        v = np.nan_to_num(table.x[:, idx[0]].astype(np.float64), nan=-1e300)
    else:  # a categorical: each level's positive rate is its score
        codes = np.argmax(table.x[:, idx], axis=1)
        rates = np.asarray(
            [y[codes == k].mean() if (codes == k).any() else 0 for k in range(len(idx))]
        )
        v = rates[codes]
    auc = float(roc_auc_score(y, v))
    return max(auc, 1 - auc)


def evaluate(
    path: Path,
    label: str,
    *,
    time_column: str | None = None,
    drop: list[str] | None = None,
    report_dir: Path | None = None,
    seed: int = 0,
    log: TextIO | None = sys.stderr,
) -> dict[str, Any]:
    """The ``nudge model evaluate`` result: ``{"cv", "time_split", "warnings", ...}``."""
    table = load_table(path, label, time_column, drop)
    if log:
        print(
            f"{path}: {len(table.y):,} rows, {len(table.names)} encoded columns, "
            f"{table.y.mean():.1%} positive",
            file=log,
        )
        for note in table.warnings:
            print(f"warning: {note}", file=log)
    cv = cross_validate(table, seed=seed, log=log)
    ts, fitted, y_test, p_test = time_split(table, seed)
    if log:
        print(format_honesty("5-fold CV (pooled out-of-fold)", cv["checks"]), file=log)
        print(format_honesty("time split (last 20 %)", ts["checks"]), file=log)
    warnings = table.warnings + leak_warnings(table, fitted, ts["roc_auc"], seed)
    result: dict[str, Any] = {
        "file": str(path),
        "rows": len(table.y),
        "positive_rate": round(float(table.y.mean()), 4),
        "label": label,
        "time_column": time_column,
        "dropped": drop or [],
        "cv": cv,
        "time_split": ts,
        "warnings": warnings,
    }
    if report_dir is not None:
        from scoring.report import write_report

        result["report"] = str(
            write_report(report_dir, result, table.names, fitted, y_test, p_test)
        )
    return result

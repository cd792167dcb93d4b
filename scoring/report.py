"""The evaluation report: a markdown page and three PNG charts beside it.

Why a separate module: matplotlib is heavy to import (~0.5 s) and only the report
needs it, so ``evaluate`` imports this lazily and the live scorer never does. Charts:
calibration (are the probabilities honest?), lift by decile (how much better than
random is the top of the list?), and feature importance (what the model leans on —
the first place to look for a leak).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from scoring.learn import Fitted


def write_report(
    out: Path,
    result: dict[str, Any],
    names: list[str],
    fitted: Fitted,
    y_test: np.ndarray,
    p_test: np.ndarray,
) -> Path:
    """Write ``report.md``, ``result.json`` and the charts into ``out``; return the page."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)

    # calibration: mean predicted vs observed rate in 10 equal-count bins, for the
    # pooled cross-validation predictions and for the time split
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    for key, label in (("cv", "5-fold CV"), ("time_split", "time split")):
        table = (result.get(key) or {}).get("checks", {}).get("reliability")
        if table:
            pred = [row["predicted"] for row in table]
            obs = [row["observed"] for row in table]
            ax.plot(pred, obs, "o-", label=label)
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed positive rate")
    ax.set_title("Calibration")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "calibration.png", dpi=100)
    plt.close(fig)

    # lift by decile, best first
    ranked = np.argsort(-p_test, kind="stable")
    deciles = np.array_split(ranked, 10)
    base = float(y_test.mean()) or 1.0
    lift = [float(y_test[d].mean()) / base for d in deciles if len(d)]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(range(1, len(lift) + 1), lift)
    ax.axhline(1.0, color="grey", linestyle="--")
    ax.set_xlabel("decile (1 = highest scores)")
    ax.set_ylabel("lift over the base rate")
    ax.set_title("Lift by decile (time split)")
    fig.tight_layout()
    fig.savefig(out / "lift.png", dpi=100)
    plt.close(fig)

    # importance (total gain), top 20
    imp = sorted(fitted.importance.items(), key=lambda kv: -kv[1])[:20]
    fig, ax = plt.subplots(figsize=(7, 6))
    if imp:
        labels, values = zip(*reversed(imp), strict=True)
        ax.barh(list(labels), list(values))
    ax.set_xlabel("total gain")
    ax.set_title("Feature importance (time-split model)")
    fig.tight_layout()
    fig.savefig(out / "importance.png", dpi=100)
    plt.close(fig)

    (out / "result.json").write_text(json.dumps(result, indent=2, default=str))
    rows = ["| metric | 5-fold CV | time split |", "| --- | --- | --- |"]
    for key in ("roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift", "top_decile_rate"):
        rows.append(f"| {key} | {result['cv'][key]} | {result['time_split'][key]} |")
    checks = {k: (result.get(k) or {}).get("checks") or {} for k in ("cv", "time_split")}
    if all(checks.values()):
        rows.append(
            f"| Brier of the constant-rate guess | {checks['cv']['brier_constant']} | "
            f"{checks['time_split']['brier_constant']} |"
        )
        rows.append(
            "| ROC AUC 95 % interval | "
            + " | ".join("{:.3f}-{:.3f}".format(*checks[k]["roc_auc_95"]) for k in checks)
            + " |"
        )
    warn = "\n".join(f"- {w}" for w in result["warnings"]) or "- none"
    page = f"""# Model evaluation: {Path(result["file"]).name}

{result["rows"]:,} rows, {result["positive_rate"]:.1%} positive, label `{result["label"]}`,
time order: {f"column `{result['time_column']}`" if result["time_column"] else "row order"},
dropped: {", ".join(result["dropped"]) or "nothing"}.

{chr(10).join(rows)}

5-fold CV uses random stratified folds; the time split trains on the first 80 % and
tests on the last 20 %, as a model deployed at that moment would be judged.

## Warnings
{warn}

## Calibration (5-fold CV and time split)
![calibration](calibration.png)

## Lift by decile (time split)
![lift](lift.png)

## Feature importance
![importance](importance.png)
"""
    page_path = out / "report.md"
    page_path.write_text(page)
    return page_path

"""Charts drawn on the server with matplotlib, returned as inline SVG markup.

matplotlib is imported on first use (it takes ~0.5 s) and only through its
object-oriented API (``Figure``), never ``pyplot``'s global state, so two requests
drawing at once cannot draw into each other's figure.
"""

from __future__ import annotations

import io
from typing import Any

from cockpit.stats import Lift

HORIZONS = ("1", "7", "30", "90")


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _figure(w: float, h: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h))


def lift_svg(lift: Lift) -> str:
    """The two arms' weighted conversion rates and the lift with its interval."""
    fig = _figure(4.0, 1.6)
    ax = fig.subplots()
    ax.barh(["control", "nudged"], [lift.control_rate, lift.treated_rate], color=["#999", "#2a6"])
    ax.set_xlim(0, max(1e-9, lift.treated_rate, lift.control_rate) * 1.3)
    ax.set_xlabel(f"converted (IPS) · lift {lift.lift:+.1%} [{lift.low:+.1%}, {lift.high:+.1%}]")
    return _svg(fig)


def importance_svg(importance: dict[str, float], top: int = 12) -> str:
    items = sorted(importance.items(), key=lambda kv: -kv[1])[:top][::-1]
    fig = _figure(5.5, 0.3 * len(items) + 0.8)
    ax = fig.subplots()
    ax.barh([k for k, _ in items], [v for _, v in items], color="#36c")
    ax.set_xlabel("total gain")
    return _svg(fig)


def inventory_svg(result: dict[str, Any]) -> str:
    """ROC AUC by horizon (days) for each silo's features alone; 0.5 is a coin."""
    fig = _figure(5.5, 3.2)
    ax = fig.subplots()
    xs = [int(h) for h in HORIZONS]
    for silo in result.get("silos", []):
        ys = [silo["auc"].get(h) for h in HORIZONS]
        if any(y is not None for y in ys):
            ax.plot(
                xs, [y if y is not None else float("nan") for y in ys], "o-", label=silo["silo"]
            )
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_xticks(xs, [f"{x} d" for x in xs])
    ax.set_ylim(0.4, 1.0)
    ax.set_xlabel("converts within")
    ax.set_ylabel("ROC AUC (that silo alone)")
    ax.legend(fontsize="small", loc="upper right")
    return _svg(fig)


def calibration_svg(table: list[dict[str, Any]]) -> str:
    """Predicted against observed rate per equal-count bin (the training report's
    reliability table): points on the diagonal are honest probabilities."""
    fig = _figure(3.6, 3.4)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=1, label="honest")
    ax.plot(
        [row["predicted"] for row in table],
        [row["observed"] for row in table],
        "o-",
        color="#36c",
        label="holdout bins",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed rate")
    ax.legend(fontsize="small", loc="upper left")
    return _svg(fig)

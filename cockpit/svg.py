"""Small inline SVGs drawn on the server (no script, nothing fetched by the browser)."""

from __future__ import annotations

from collections.abc import Sequence


def sparkline(points: Sequence[tuple[float, float]], width: int = 120, height: int = 28) -> str:
    """A score sparkline: ``(time, score in [0, 1])`` points as one polyline, the last one
    dotted. Time is spaced by event order, not clock, so a burst stays readable."""
    if not points:
        return ""
    pad = 2.0
    n = len(points)
    xs = [pad + (width - 2 * pad) * (i / (n - 1) if n > 1 else 1.0) for i in range(n)]
    ys = [pad + (height - 2 * pad) * (1.0 - min(max(v, 0.0), 1.0)) for _, v in points]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    last = points[-1][1]
    return (
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="score history, now {last:.0%}">'
        f"<title>{n} scores, now {last:.0%}</title>"
        f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{path}"/>'
        f'<circle cx="{xs[-1]:.1f}" cy="{ys[-1]:.1f}" r="2.5"/></svg>'
    )

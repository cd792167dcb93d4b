"""Win/loss drivers of a model trained on a generated world with a known process."""

from __future__ import annotations

import numpy as np

from scoring.drivers import drivers
from scoring.model_scorer import CompiledModel


def test_drivers_separate_won_from_lost_and_add_up(small_world) -> None:  # type: ignore[no-untyped-def]
    """Across all feature groups the won-minus-lost gaps add up to the gap in mean
    margin (contributions are additive); the biggest gap favours won leads (intent drives
    both activity and conversion in the generated world); the table is ordered by gap."""
    _data, snaps, result = small_world
    model = CompiledModel(result.booster_json, result.meta)
    table = drivers(model, snaps, top=10_000)
    assert table and table[0]["gap"] > 0
    gaps = [abs(float(r["gap"])) for r in table]
    assert gaps == sorted(gaps, reverse=True)
    last: dict[str, int] = {}
    for i, (lead, t) in enumerate(zip(snaps.lead, snaps.t, strict=True)):
        closed = snaps.closed_at.get(lead)
        if closed is not None and t < closed:
            last[lead] = i
    margins = {
        lead: model.trees.margin(np.asarray(snaps.x[i], dtype=np.float32))
        for lead, i in last.items()
    }
    won = [m for lead, m in margins.items() if lead in snaps.converted_at]
    lost = [m for lead, m in margins.items() if lead not in snaps.converted_at]
    assert table[0]["won_leads"] == len(won) and table[0]["lost_leads"] == len(lost)
    total_gap = sum(float(r["gap"]) for r in table)
    assert abs(total_gap - (np.mean(won) - np.mean(lost))) < 1e-2


def test_model_page_shows_the_live_models_drivers_from_the_record(small_world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The cockpit's Model page computes the promoted model's drivers from score
    snapshots as the workers record them (a replay of the generated events)."""
    import datetime as dt

    import orjson

    from cockpit import pages
    from nudge.signals import Score
    from scoring.registry import Registry
    from scoring.state import LeadState, apply_event, snapshot_row
    from scoring.train import snapshots_from_rows

    data, _snaps, result = small_world
    registry = Registry(tmp_path)
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    info = registry.save(result.booster_json, result.meta, now)
    registry.promote(info.version, now)
    states: dict[str, LeadState] = {}
    rows = []
    for event in sorted(data.events, key=lambda e: (e.occurred_at, e.event_id))[:40_000]:
        state = states.setdefault(str(event.lead_id), LeadState(str(event.lead_id)))
        if apply_event(state, event):
            score = Score(
                value=0.5, model_version=info.version, rule_based=False, scored_at=event.occurred_at
            )
            row = snapshot_row(state, event, score)
            rows.append(row | {"state_json": orjson.loads(row["state_json"])})
    page = pages.model(tmp_path, pages.drivers(tmp_path, info.version, rows))
    assert page["promoted"] == info.version
    compiled = CompiledModel(result.booster_json, {**result.meta, "version": info.version})
    expected = drivers(compiled, snapshots_from_rows(rows, names=compiled.names))
    assert page["drivers"] == expected and expected
    assert page["history"][0][1] == f"promote {info.version}"

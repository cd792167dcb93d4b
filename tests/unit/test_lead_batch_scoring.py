"""The lead agent scores a micro-batch in one call and words reasons only where needed.

With a promoted model (``scoring.model_scorer``), a score's plain-word reasons cost
several times the score itself, so the lead agent leaves them unworded unless a rule
may act on the signal; the store's copy of every lead is worded, in one batch, when it
is written. Either way the words are those the one-event-at-a-time scorer gives.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nudge.events import parse_event
from scoring.model_scorer import LiveScorer
from scoring.registry import Registry
from scoring.state import LeadState, apply_event
from scoring.synthetic import generate
from scoring.train import replay, train
from streams import agents
from tests.harness import AgentHarness

T0 = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
ON_DEMO = """name: on-demo
owner: ops@example.com
version: 1
rules:
  - id: demo
    trigger: {type: event, event: form.submitted}
    actions: [{type: nudge, to: owner, template: "{{ lead.lead_id }}: {{ score.reasons | join(', ') }}"}]
"""


def event(lead: str, n: int, **body: Any) -> dict[str, Any]:
    at = (T0 + dt.timedelta(minutes=n)).isoformat()
    return {"event_id": f"{lead}-{n}", "occurred_at": at, "source": "web", "lead_id": lead, **body}


def lead_events(lead: str, hot: bool) -> list[dict[str, Any]]:
    out = [
        event(lead, 0, type="lead.created", source="crm", fields={"owner_rep_id": "rep-1"}),
        *[event(lead, n, type="page.viewed", path="/pricing") for n in (1, 2, 3)],
    ]
    if hot:
        out.append(event(lead, 4, type="form.submitted", form="demo-request"))
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with a small promoted model (synthetic history, ~3 s)."""
    path = tmp_path_factory.mktemp("model")
    snaps = replay(generate(n_leads=400, days=90, seed=3).events)
    result = train(snaps, now=T0, progress=None)
    registry = Registry(path)
    registry.promote(registry.save(result.booster_json, result.meta, T0).version, T0)
    return path


@pytest.fixture
async def h(tmp_path: Path, model_dir: Path) -> AsyncIterator[AgentHarness]:
    (tmp_path / "models").symlink_to(model_dir / "models")
    playbook = tmp_path / "on-demo.yaml"
    playbook.write_text(ON_DEMO)
    harness = AgentHarness(tmp_path, partitions=4, min_conversions=0, playbooks=[playbook])
    yield harness
    await harness.close()


def one_by_one(scorer: LiveScorer, events: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each lead's reasons after its last event, scored the way ``simulate`` does."""
    states: dict[str, LeadState] = {}
    reasons: dict[str, list[str]] = {}
    for raw in events:
        e = parse_event(raw)
        state = states.setdefault(raw["lead_id"], LeadState(raw["lead_id"]))
        apply_event(state, e)  # type: ignore[arg-type]
        score = scorer.rescore(state, e, T0)  # type: ignore[arg-type]
        state.record_score(score)
        reasons[raw["lead_id"]] = score.reasons
    return reasons


async def test_signals_and_store_copies_carry_the_reasons_one_by_one_scoring_gives(
    h: AgentHarness,
) -> None:
    assert not h.p.scorer.reasons([]) and h.p.scorer.version.startswith("m")
    events = [e for i in range(6) for e in lead_events(f"L{i}", hot=i % 3 == 0)]
    batch = [h.message("lead.activity", e, key=e["lead_id"].encode()) for e in events]
    await h.run("lead", agents.lead, batch)
    expected = one_by_one(LiveScorer(h.settings.data_dir, min_conversions=0), events)
    assert any(expected.values())  # the model finds reasons for these leads

    signals = [json.loads(json.dumps(item)) for _, item in h.topics["lead.signals"].items()]
    assert sorted(s["lead"]["lead_id"] for s in signals) == ["L0", "L3"]  # the demo requests
    for s in signals:
        assert s["score"]["reasons"] == expected[s["lead"]["lead_id"]]
    assert h.p.unworded == {"L1", "L2", "L4", "L5"}  # no rule could act on their scores

    await h.p.flush_leads()
    assert h.p.unworded == set()
    stored = await (await h.p.store()).lead_states([f"L{i}" for i in range(6)])
    for lead_id, (_profile, checkpoint) in stored.items():
        assert checkpoint["score"]["reasons"] == expected[lead_id], lead_id

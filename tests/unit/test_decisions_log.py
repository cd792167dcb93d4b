"""The record keeps every decision a rule made, with its propensity and signal, once."""

from __future__ import annotations

from crm.store import Store
from playbooks import decide
from playbooks.decisions import Logged, logged_decisions
from tests.conftest import STORES

from .playbooks.helpers import NOW, playbook, signal

pytestmark = STORES

RULES = (
    "  - id: r\n"
    "    trigger: {type: event, event: page.viewed}\n"
    "    conditions: [{field: score.value, gte: 0.6}]\n"
    "    explore: 0.25\n"
    "    actions: [{type: nudge, to: owner, template: 'look at {{ lead.company }}'}]\n"
)


async def test_decisions_round_trip_through_the_record(store: Store) -> None:
    pb = [playbook(RULES)]
    logged: list[Logged] = []
    for i, x in enumerate((0.9, 0.1, 0.2, 0.3)):
        s = signal(x, None, event_id=f"e{i}", lead_id=f"L{i}")
        logged += logged_decisions(s, decide(s, pb, NOW))
    await store.save_decisions([d.row() for d in logged])
    await store.save_decisions([logged[0].row()])  # a redelivered signal: not twice
    back = [Logged.from_row(r) for r in await store.decisions()]
    assert sorted(back, key=lambda d: d.signal.event_id) == logged
    assert logged[0].nudged and logged[0].propensity == 1.0
    assert {d.propensity for d in logged[1:]} <= {0.25, 0.75}

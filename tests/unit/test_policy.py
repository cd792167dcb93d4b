"""Off-policy evaluation on logged decisions with a known effect of the nudge."""

from __future__ import annotations

import datetime as dt

import numpy as np

from nudge.events import DealWon, LeadFields, LeadUpdated
from playbooks import decide
from playbooks.decisions import Logged, logged_decisions
from replay.policy import estimate, evaluate_policy, rewards
from scoring.targets import Catalogue, target

from .playbooks.helpers import NOW, playbook, signal


def rule(threshold: float, explore: float = 0.0, explore_trigger: float = 0.0) -> str:
    return (
        "  - id: r\n"
        "    trigger: {type: event, event: page.viewed}\n"
        f"    conditions: [{{field: score.value, gte: {threshold}}}]\n"
        f"    explore: {explore}\n"
        f"    explore_trigger: {explore_trigger}\n"
        "    actions: [{type: nudge, to: owner, template: 'look at {{ lead.company }}'}]\n"
    )


def base(x: np.ndarray) -> np.ndarray:
    return 0.05 + 0.5 * x


def effect(x: np.ndarray) -> np.ndarray:
    """What a nudge adds to the chance to convert: most for the cold leads."""
    return 0.25 * (1 - x)


def test_ips_and_dr_recover_a_candidate_rules_known_value() -> None:
    """Logged under "nudge from 60 %, explore 20 % below"; the candidate nudges from 20 %.
    Its true value is known; IPS and DR find it from the logged decisions, where the
    logged policy's own value does not."""
    rng = np.random.default_rng(3)
    logging, candidate = [playbook(rule(0.6, explore=0.2))], [playbook(rule(0.2))]
    n = 4000
    xs = rng.uniform(0, 1, n)
    logged: list[Logged] = []
    for i, x in enumerate(xs):
        s = signal(round(float(x), 4), None, event_id=f"e{i}", lead_id=f"L{i}")
        [d] = logged_decisions(s, decide(s, logging, NOW))
        logged.append(d)
    a = np.asarray([d.nudged for d in logged])
    p = np.asarray([d.propensity for d in logged])
    x = np.asarray([d.signal.score.value for d in logged])
    assert set(np.round(p[a & (x < 0.6)], 6)) == {0.2} and set(np.round(p[~a], 6)) == {0.8}
    r = (rng.random(n) < base(x) + a * effect(x)).astype(float)
    truth = float(np.mean(base(x) + (x >= 0.2) * effect(x)))
    t = x >= 0.2
    result = estimate(a, p, r, t, x)
    assert abs(result["ips"] - truth) < 0.025, (result, truth)
    assert abs(result["dr"] - truth) < 0.02, (result, truth)
    assert result["dr_95"][0] <= truth <= result["dr_95"][1], (result, truth)
    # what would mislead: the logged policy's own value
    assert abs(result["logged_value"] - truth) > 0.03
    # the same through the candidate playbook itself (it is evaluated on every signal)
    by_playbook = evaluate_policy(logged, candidate, r)
    assert by_playbook["dr"] == result["dr"] and by_playbook["unsupported"] == 0


def test_no_exploration_leaves_the_candidates_extra_nudges_unsupported() -> None:
    logging, candidate = [playbook(rule(0.6))], [playbook(rule(0.2))]
    logged = []
    for i, x in enumerate((0.1, 0.3, 0.7)):
        s = signal(x, None, event_id=f"e{i}", lead_id=f"L{i}")
        logged += logged_decisions(s, decide(s, logging, NOW))
    assert [(d.nudged, d.propensity) for d in logged] == [(False, 1.0), (False, 1.0), (True, 1.0)]
    result = evaluate_policy(logged, candidate, np.asarray([0.0, 1.0, 1.0]))
    assert result["unsupported"] == 1  # the 30 % lead: the candidate nudges, nobody ever did


def test_trigger_exploration_is_logged_with_its_propensity() -> None:
    """A rule may explore its trigger: on signals it does not match, it runs anyway with
    the given chance; both the explored nudges and the declined ones carry propensities."""
    pb = [playbook(rule(0.0, explore_trigger=0.3))]
    counts = {True: 0, False: 0}
    for i in range(400):
        s = signal(0.5, None, event={"type": "form.submitted", "form": "x"}, event_id=f"f{i}")
        for d in logged_decisions(s, decide(s, pb, NOW + dt.timedelta(seconds=i))):
            assert d.propensity == (0.3 if d.nudged else 0.7)
            counts[d.nudged] += 1
    assert counts[True] + counts[False] == 400
    assert 80 < counts[True] < 160


def test_rewards_per_target_churn_counts_the_customers_who_stayed() -> None:
    """A decision's reward is the target's outcome within the horizon after it: a
    conversion, a purchase, or — for churn — a customer who did not leave."""
    cat = Catalogue.model_validate(
        {
            "products": [
                {
                    "id": "payroll",
                    "purchase": {
                        "event": "lead.updated",
                        "field": "custom.purchased",
                        "equals": "payroll",
                    },
                }
            ]
        }
    )
    day = dt.timedelta(days=1)
    common = {"source": "crm", "fields": LeadFields(custom={"status": "churned"})}
    events = [
        LeadUpdated(
            type="lead.updated", event_id="c", occurred_at=NOW + 3 * day, lead_id="L0", **common
        ),
        LeadUpdated(
            type="lead.updated",
            event_id="p",
            occurred_at=NOW + 2 * day,
            lead_id="L1",
            source="crm",
            fields=LeadFields(custom={"purchased": "payroll"}),
        ),
        DealWon(
            type="deal.won", event_id="w", occurred_at=NOW + 40 * day, lead_id="L1", source="crm"
        ),
    ]
    logged = [
        Logged(signal(0.5, None, event_id=f"e{i}", lead_id=f"L{i}"), "pb", "r", True, 1.0)
        for i in range(3)
    ]
    month = dt.timedelta(days=30)
    assert list(rewards(logged, events, month, target("churn", cat))) == [0.0, 1.0, 1.0]
    assert list(rewards(logged, events, month, target("cross_sell:payroll", cat))) == [
        0.0,
        1.0,
        0.0,
    ]
    assert list(rewards(logged, events, month)) == [0.0, 0.0, 0.0]  # won after 40 days
    assert list(rewards(logged, events, 2 * month)) == [0.0, 1.0, 0.0]

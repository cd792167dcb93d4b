"""`nudge playbooks explain`: "why didn't it fire?" answered for each cause.

Each test replays a few events (`--events`) through the real state, scorer,
evaluator and delivery policy, and reads the explanation the command prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli import main

REP = {
    "type": "rep.upserted",
    "source": "crm",
    "rep_id": "rep-a",
    "name": "Ana",
    "phone": "+14155550101",
    "timezone": "America/New_York",
    "team": "team-west",
    "manager_rep_id": "rep-m",
}


def lead(lead_id: str, at: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "lead.created",
        "source": "crm",
        "lead_id": lead_id,
        "occurred_at": at,
        "fields": {"company": f"Co {lead_id}", "owner_rep_id": "rep-a"} | fields,
    }


def view(lead_id: str, at: str, path: str = "/pricing") -> dict[str, Any]:
    return {
        "type": "page.viewed",
        "source": "web",
        "lead_id": lead_id,
        "occurred_at": at,
        "path": path,
    }


def explain(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    events: list[dict[str, Any]],
    rules: str,
    lead_id: str = "L1",
    head: str = "",
) -> str:
    file = tmp_path / "events.ndjson"
    rep = REP | {"event_id": "rep", "occurred_at": "2026-03-02T00:00:00+00:00"}
    lines = [rep] + [e | {"event_id": f"e{i}"} for i, e in enumerate(events)]
    file.write_text("\n".join(json.dumps(e) for e in lines) + "\n")
    pb = tmp_path / "pb.yaml"
    pb.write_text(f"name: p\nowner: o\nversion: 1\n{head}rules:\n{rules}")
    args = [
        "playbooks",
        "explain",
        "--lead",
        lead_id,
        "--events",
        str(file),
        "--playbooks",
        str(pb),
    ]
    assert main(args) == 0
    return capsys.readouterr().out


PRICING = (
    "  - id: pricing\n"
    "    trigger: {type: event, event: page.viewed, where: {path: {starts_with: /pricing}}}\n"
)
NUDGE = '    actions: [{type: nudge, template: "{{ lead.company }} on pricing"}]\n'
DAY = "2026-03-02T"


def test_trigger_filter_shows_the_value_it_saw(tmp_path: Path, capsys: Any) -> None:
    out = explain(
        tmp_path,
        capsys,
        [lead("L1", DAY + "14:00:00Z"), view("L1", DAY + "15:00:00Z", "/blog")],
        PRICING + NUDGE,
    )
    assert (
        "didn't fire: trigger filter failed: `event.path` starts_with '/pricing' (was '/blog')"
        in out
    )


def test_condition_shows_value_and_need(tmp_path: Path, capsys: Any) -> None:
    rules = PRICING + "    conditions: [{field: lead.employees, gte: 50}]\n" + NUDGE
    out = explain(
        tmp_path,
        capsys,
        [lead("L1", DAY + "14:00:00Z", employees=12), view("L1", DAY + "15:00:00Z")],
        rules,
    )
    assert "didn't fire: `lead.employees` was 12, needs `lead.employees` ≥ 50" in out
    assert "FAILED `lead.employees` ≥ 50 (`lead.employees` was 12)" in out


def test_cooldown_says_until_when(tmp_path: Path, capsys: Any) -> None:
    rules = PRICING + "    cooldown: 1d\n" + NUDGE
    events = [
        lead("L1", DAY + "14:00:00Z"),
        view("L1", DAY + "15:00:00Z"),
        view("L1", DAY + "16:00:00Z"),
    ]
    out = explain(tmp_path, capsys, events, rules)
    assert "pricing  on page.viewed: fired" in out
    assert "didn't fire: cooldown until 2026-03-03 15:00 UTC" in out


def test_daily_cap_folds_into_digest(tmp_path: Path, capsys: Any) -> None:
    events = [
        lead("L0", DAY + "14:00:00Z"),
        lead("L1", DAY + "14:00:00Z"),
        view("L0", DAY + "15:00:00Z"),
        view("L1", DAY + "15:10:00Z"),
    ]
    out = explain(
        tmp_path, capsys, events, PRICING + NUDGE, head="guards: {max_per_rep_per_day: 1}\n"
    )
    assert "didn't fire: over the playbook's cap of 1 per rep per day: folded into a digest" in out


def test_audience_names_the_team(tmp_path: Path, capsys: Any) -> None:
    out = explain(
        tmp_path,
        capsys,
        [lead("L1", DAY + "14:00:00Z"), view("L1", DAY + "15:00:00Z")],
        PRICING + NUDGE,
        head="audience: {teams: [team-east]}\n",
    )
    assert "didn't fire: audience: owner's team team-west is not one of teams team-east" in out


def test_quiet_hours_hold_is_shown_with_delivery(tmp_path: Path, capsys: Any) -> None:
    """03:00 in New York (08:00 UTC): the rule fires, delivery holds it until 08:00 local."""
    out = explain(
        tmp_path,
        capsys,
        [lead("L1", DAY + "07:00:00Z"), view("L1", DAY + "08:00:00Z")],
        PRICING + NUDGE,
    )
    assert "fired" in out
    assert "delivery to rep-a: hold until 2026-03-02 13:00 (quiet hours)" in out


def test_exploration_draw_is_shown(tmp_path: Path, capsys: Any) -> None:
    rules = (
        PRICING + "    conditions: [{field: lead.employees, gte: 50}]\n    explore: 0.999\n" + NUDGE
    )
    out = explain(
        tmp_path,
        capsys,
        [lead("L1", DAY + "14:00:00Z", employees=12), view("L1", DAY + "15:00:00Z")],
        rules,
    )
    assert "fired (exploration (conditions failed:" in out
    assert "vs share 0.999: nudged anyway" in out
    rules = rules.replace("0.999", "0.001")
    out = explain(
        tmp_path,
        capsys,
        [lead("L1", DAY + "14:00:00Z", employees=12), view("L1", DAY + "15:00:00Z")],
        rules,
    )
    assert "vs share 0.001: not explored" in out


def test_no_evaluation_is_an_answer_too(tmp_path: Path, capsys: Any) -> None:
    out = explain(tmp_path, capsys, [lead("L1", DAY + "14:00:00Z")], PRICING + NUDGE)
    assert "no evaluation of any rule for lead L1" in out


def test_explain_json_gives_the_evaluations(tmp_path: Path, capsys: Any) -> None:
    file = tmp_path / "e.ndjson"
    rep = REP | {"event_id": "rep", "occurred_at": "2026-03-02T00:00:00+00:00"}
    file.write_text(
        "\n".join(
            json.dumps(e)
            for e in [
                rep,
                lead("L1", DAY + "14:00:00Z") | {"event_id": "a"},
                view("L1", DAY + "15:00:00Z", "/blog") | {"event_id": "b"},
            ]
        )
    )
    pb = tmp_path / "pb.yaml"
    pb.write_text("name: p\nowner: o\nversion: 1\nrules:\n" + PRICING + NUDGE)
    assert (
        main(
            [
                "playbooks",
                "explain",
                "--lead",
                "L1",
                "--rule",
                "pricing",
                "--events",
                str(file),
                "--playbooks",
                str(pb),
                "--format",
                "json",
            ]
        )
        == 0
    )
    [ev] = json.loads(capsys.readouterr().out)["evaluations"]
    assert ev["outcome"] == "trigger" and ev["rule"] == "pricing" and ev["event_id"] == "b"


def test_delivery_daily_limit_is_shown(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rep's daily limit (delivery policy, NUDGE_DAILY_LIMIT) suppresses the second nudge."""
    monkeypatch.setenv("NUDGE_DAILY_LIMIT", "1")
    events = [
        lead("L0", DAY + "14:00:00Z"),
        lead("L1", DAY + "14:00:00Z"),
        view("L0", DAY + "15:00:00Z"),
        view("L1", DAY + "15:10:00Z"),
    ]
    out = explain(tmp_path, capsys, events, PRICING + NUDGE)
    assert "delivery to rep-a: suppress (daily limit)" in out

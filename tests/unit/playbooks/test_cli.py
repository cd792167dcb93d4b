"""`nudge playbooks check` and `simulate`, run through the real command-line parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import main
from playbooks.loader import DEFAULT_PLAYBOOKS, EXAMPLES

SAMPLE_DAY = Path(__file__).parents[3] / "cli" / "sample_day.ndjson"


def test_check_examples_and_default_pass(capsys: pytest.CaptureFixture[str]) -> None:
    """Every shipped playbook checks clean: exit 0."""
    assert main(["playbooks", "check", str(EXAMPLES), str(DEFAULT_PLAYBOOKS)]) == 0
    assert "REFUSED" not in capsys.readouterr().out


def test_check_json_names_file_line_column_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad file exits 1; JSON output carries line, column and the suggestion."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: b\nowner: o\nversion: 1\nrules:\n  - id: r\n"
        "    trigger: {type: score.crossed_above, value: 0.5}\n"
        "    conditions: [{field: lead.compnay, eq: x}]\n    actions: [{type: stop}]\n"
    )
    assert main(["playbooks", "check", str(bad), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    [problem] = doc["files"][0]["problems"]
    assert (problem["line"], problem["column"]) == (7, 26)  # at `lead.compnay`
    assert "did you mean `lead.company`?" in problem["message"]


def test_simulate_prints_what_would_be_sent_and_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Replaying the sample day through hot-lead prints each nudge with why, then counts."""
    assert main(["playbooks", "simulate", "--events", str(SAMPLE_DAY)]) == 0
    out = capsys.readouterr().out
    assert "hot-lead/crossed-70" in out and "why: score.value=" in out
    assert "per rule:" in out and "per rep:" in out


def test_simulate_runs_delayed_steps_on_the_simulated_clock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A meeting that ends at 10:00 yields the debrief question at 10:15, not at once."""
    events = tmp_path / "e.ndjson"
    lines = [
        {
            "event_id": "r1",
            "type": "rep.upserted",
            "occurred_at": "2026-03-02T07:00:00+00:00",
            "source": "crm",
            "rep_id": "rep-a",
            "name": "A",
            "timezone": "America/New_York",
        },
        {
            "event_id": "l1",
            "type": "lead.created",
            "occurred_at": "2026-03-02T08:00:00+00:00",
            "source": "crm",
            "lead_id": "L1",
            "fields": {"company": "Acme", "owner_rep_id": "rep-a"},
        },
        {
            "event_id": "m1",
            "type": "meeting.ended",
            "occurred_at": "2026-03-02T10:00:00+00:00",
            "source": "cal",
            "lead_id": "L1",
            "duration_s": 1800,
        },
    ]
    events.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    pb = EXAMPLES / "post-meeting-debrief.yaml"
    assert (
        main(
            [
                "playbooks",
                "simulate",
                "--events",
                str(events),
                "--playbooks",
                str(pb),
                "--format",
                "json",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    [outcome] = doc["outcomes"]
    assert outcome["at"] == "2026-03-02T10:15:00+00:00"
    assert outcome["command"]["kind"] == "ask" and outcome["command"]["rep_id"] == "rep-a"
    assert doc["per_rep"] == {"rep-a": 1}

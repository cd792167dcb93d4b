"""`nudge model ...` through the real CLI entry point (no broker needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import main


def test_evaluate_prints_json_and_list_is_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """evaluate prints {cv, time_split, warnings} on stdout; list says there are no models."""
    monkeypatch.setenv("NUDGE_DATA_DIR", str(tmp_path))
    csv = tmp_path / "d.csv"
    rows = ["x,c,y"] + [f"{i % 7},{'ab'[i % 2]},{int(i % 7 > 3)}" for i in range(300)]
    csv.write_text("\n".join(rows) + "\n")
    assert main(["model", "evaluate", "--csv", str(csv), "--label", "y"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"cv", "time_split", "warnings"} <= set(out)
    assert Path(out["report"]).is_file()
    assert main(["model", "list"]) == 0
    assert "no models" in capsys.readouterr().out


def test_bad_input_exits_2_with_the_column_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing label column and an unknown version are configuration errors (exit 2)."""
    monkeypatch.setenv("NUDGE_DATA_DIR", str(tmp_path))
    csv = tmp_path / "d.csv"
    csv.write_text("a,b\n1,0\n2,1\n")
    assert main(["model", "evaluate", "--csv", str(csv), "--label", "won"]) == 2
    assert "no label column 'won'" in capsys.readouterr().err
    assert main(["model", "promote", "m-nope"]) == 2
    assert "m-nope" in capsys.readouterr().err


def test_synth_train_promote_rollback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Synthetic events train a model that can be promoted and rolled back; train prints
    the labelled share, the reliability table and the ground truth's own figures."""
    monkeypatch.setenv("NUDGE_DATA_DIR", str(tmp_path))
    events, truth = tmp_path / "ev.ndjson", tmp_path / "truth.json"
    synth = ["model", "synth", "--leads", "400", "--days", "120", "--out", str(events)]
    assert main([*synth, "--truth", str(truth)]) == 0
    assert (
        main(["model", "train", "--events", str(events), "--truth", str(truth), "--promote"]) == 0
    )
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["promoted"] and summary["metrics"]["holdout"]["roc_auc"] > 0.5
    assert 0 < summary["labelled_share"] < 1
    assert "labelled share" in captured.err and "constant-rate guess" in captured.err
    assert "ground truth: ROC AUC" in captured.err and "decile" in captured.err
    assert (tmp_path / "models" / "PROMOTED").read_text().strip() == summary["version"]
    assert main(["model", "rollback"]) == 0
    assert not (tmp_path / "models" / "PROMOTED").exists()


def test_train_reports_a_bad_event_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid event in the history stops training with the file and line number."""
    monkeypatch.setenv("NUDGE_DATA_DIR", str(tmp_path))
    events = tmp_path / "ev.ndjson"
    events.write_text('{"type": "page.viewed"}\n')
    assert main(["model", "train", "--events", str(events)]) == 1
    assert "ev.ndjson: line 1" in capsys.readouterr().err


def test_synth_customers_and_train_a_churn_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """synth --customers writes events, the catalogue and the truth; train --target churn
    stores the model in the churn registry, beside the ground truth's figures; list and
    promote work per target; an unknown product is a configuration error."""
    monkeypatch.setenv("NUDGE_DATA_DIR", str(tmp_path))
    events, truth, cat = tmp_path / "c.ndjson", tmp_path / "t.json", tmp_path / "products.yaml"
    synth = ["model", "synth", "--customers", "400", "--days", "150", "--out", str(events)]
    assert main([*synth, "--truth", str(truth), "--catalogue", str(cat)]) == 0
    capsys.readouterr()
    train = ["model", "train", "--events", str(events), "--truth", str(truth)]
    assert main([*train, "--target", "churn", "--products", str(cat), "--promote"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["target"] == "churn" and summary["promoted"]
    assert "ground truth: ROC AUC" in captured.err
    assert (tmp_path / "models" / "churn" / "PROMOTED").read_text().strip() == summary["version"]
    assert not (tmp_path / "models" / "PROMOTED").exists()
    assert main(["model", "list", "--target", "churn"]) == 0
    assert summary["version"] in capsys.readouterr().out
    assert main([*train, "--target", "cross_sell:nope", "--products", str(cat)]) == 2
    assert "no product 'nope'" in capsys.readouterr().err


def test_forecast_prints_the_backtest_beside_the_forecast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """forecast needs a promoted model (exit 2 without), then prints the forecast by month
    with the backtest error beside each month, per rep and per team."""
    monkeypatch.setenv("NUDGE_DATA_DIR", str(tmp_path))
    events = tmp_path / "ev.ndjson"
    assert main(["model", "synth", "--leads", "400", "--days", "150", "--out", str(events)]) == 0
    assert main(["model", "forecast", "--events", str(events)]) == 2
    assert "no conversion model is promoted" in capsys.readouterr().err
    assert main(["model", "train", "--events", str(events), "--promote"]) == 0
    capsys.readouterr()
    assert main(["model", "forecast", "--events", str(events), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [m["ahead"] for m in out["months"]] == [0, 1, 2, 3, 4, 5]
    assert out["backtest_by_months_ahead"]["0"]["points"] >= 2
    assert set(out["months"][0]["by_team"]) == {"east", "west"}
    assert main(["model", "forecast", "--events", str(events), "--months", "3"]) == 0
    text = capsys.readouterr().out
    assert "past" in text and "by rep, next 3 months:" in text and "rep-1" in text
    assert "by team" in text and "east" in text


POLICY_RULE = """name: pricing
owner: ops@example.com
version: 1
rules:
  - id: pricing-visit
    trigger: {{type: event, event: page.viewed, where: {{path: {{starts_with: /pricing}}}}}}
    conditions: [{{field: score.value, gte: {threshold}}}]
    explore: {explore}
    actions: [{{type: nudge, to: owner, template: "{{{{ lead.company }}}} is on pricing"}}]
"""


def test_evaluate_policy_from_simulated_decisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """simulate logs every decision with its propensity; evaluate-policy weighs them for a
    candidate. In a replay nudges change nothing, so every policy's true value is the
    logged one: IPS and DR must find it (their intervals hold it)."""
    monkeypatch.setenv("NUDGE_DATA_DIR", str(tmp_path))
    events, decisions = tmp_path / "ev.ndjson", tmp_path / "decisions.ndjson"
    logging, candidate = tmp_path / "logging.yaml", tmp_path / "candidate.yaml"
    logging.write_text(POLICY_RULE.format(threshold=0.5, explore=0.3))
    candidate.write_text(POLICY_RULE.format(threshold=0.2, explore=0.0))
    assert main(["model", "synth", "--leads", "150", "--days", "45", "--out", str(events)]) == 0
    sim = ["playbooks", "simulate", "--events", str(events), "--playbooks", str(logging)]
    assert main([*sim, "--decisions", str(decisions), "--format", "json"]) == 0
    capsys.readouterr()
    rows = [json.loads(line) for line in decisions.read_text().splitlines()]
    assert {
        r["propensity"] for r in rows if r["nudged"] and r["signal"]["score"]["value"] < 0.5
    } == {0.3}
    run = ["model", "evaluate-policy", "--decisions", str(decisions), "--events", str(events)]
    assert main([*run, "--playbooks", str(candidate)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["decisions"] == len(rows) and result["unsupported"] == 0
    assert result["candidate_nudges"] > result["logged_nudges"] * 0.9
    for name in ("ips_95", "dr_95"):
        low, high = result[name]
        assert low <= result["logged_value"] <= high, result

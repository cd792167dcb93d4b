"""`nudge model evaluate` on small CSV files: parsing, errors, metrics, leak warnings, report."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from nudge.errors import ConfigError
from scoring.evaluate import evaluate, load_table
from scoring.learn import metrics

KEYS = {"roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift", "top_decile_rate"}


def write_csv(path: Path, n: int = 800, sep: str = ",", leak: bool = False, seed: int = 0) -> Path:
    """A table where `visits` and `plan` carry signal, `noise` none, `leaky` nearly all."""
    rng = np.random.default_rng(seed)
    lines = [
        sep.join(["when", "visits", "plan", "noise", *(["leaky"] if leak else []), "converted"])
    ]
    for i in range(n):
        visits = int(rng.poisson(3))
        plan = ["free", "pro", "team"][int(rng.integers(3))]
        p = 1 / (1 + np.exp(-(-2.5 + 0.5 * visits + (0.8 if plan == "team" else 0))))
        y = rng.random() < p
        row = [f"2024-01-{1 + i % 28:02d}", str(visits), plan, f"{rng.normal():.3f}"]
        if leak:
            row.append(f"{(5.0 if y else 0.0) + rng.normal():.3f}")
        row.append("yes" if y else "no")
        lines.append(sep.join(row))
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_reads_gzip_semicolons_and_yes_no_labels(tmp_path: Path) -> None:
    """A ;-separated .csv.gz with yes/no labels loads; the text column is one-hot encoded."""
    table = load_table(write_csv(tmp_path / "d.csv.gz", sep=";"), "converted", time_column="when")
    assert set(table.y) == {0.0, 1.0}
    assert "visits" in table.names and "plan=team" in table.names
    assert "when" not in table.source and len(table.order) == 800


def test_missing_label_column_names_file_and_columns(tmp_path: Path) -> None:
    """A wrong --label is an error naming the file, the column and the ones that exist."""
    path = write_csv(tmp_path / "d.csv")
    with pytest.raises(ConfigError, match=r"d\.csv: no label column 'y'.*converted"):
        load_table(path, "y")


def test_non_binary_label_is_refused_with_the_line(tmp_path: Path) -> None:
    """A label value that is not 0/1, true/false or yes/no names its line."""
    path = tmp_path / "d.csv"
    path.write_text("a,label\n1,yes\n2,maybe\n")
    with pytest.raises(ConfigError, match="line 3 has 'maybe'"):
        load_table(path, "label")


def test_metrics_of_a_perfect_and_a_useless_ranking() -> None:
    """AUC 1 and top-decile lift 1/base for a perfect ranking; AUC 0.5 for a constant one."""
    y = np.array([0] * 90 + [1] * 10)
    perfect = metrics(y, y.astype(float) * 0.9 + 0.05)
    assert perfect["roc_auc"] == 1.0 and perfect["top_decile_lift"] == pytest.approx(10.0)
    assert metrics(y, np.full(100, 0.1))["roc_auc"] == 0.5


def test_evaluate_reports_cv_time_split_and_charts(tmp_path: Path) -> None:
    """The result has both metric sets, no warning on clean data, and a report with PNGs."""
    result = evaluate(
        write_csv(tmp_path / "d.csv"),
        "converted",
        time_column="when",
        report_dir=tmp_path / "rep",
        log=None,
    )
    assert set(result["cv"]) >= KEYS and set(result["time_split"]) >= KEYS
    assert result["cv"]["roc_auc"] > 0.6
    assert result["warnings"] == []
    for name in ("report.md", "calibration.png", "lift.png", "importance.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 100


def test_a_column_that_decides_the_label_is_flagged(tmp_path: Path) -> None:
    """A column known only after the outcome is named in a leak warning; --drop silences it."""
    path = write_csv(tmp_path / "d.csv", leak=True)
    result = evaluate(path, "converted", log=None)
    assert any("'leaky'" in w for w in result["warnings"])
    assert evaluate(path, "converted", drop=["leaky"], log=None)["warnings"] == []


def test_too_few_positives_is_a_clear_error(tmp_path: Path) -> None:
    """A label with a handful of positives is refused before training, with the count."""
    path = tmp_path / "d.csv"
    path.write_text("a,y\n" + "".join(f"{i},{int(i < 3)}\n" for i in range(200)))
    with pytest.raises(ConfigError, match="only 3 rows of its rarer value"):
        load_table(path, "y")


def test_stray_markers_are_missing_numbers_with_a_warning(tmp_path: Path) -> None:
    """A numeric column with '?' and 'NA' stays one numeric column (markers missing) and
    the warning names the column and the markers; a mostly-numeric column with other
    text stays categorical with a warning."""
    path = tmp_path / "d.csv"
    lines = ["age,score,label"]
    for i in range(300):
        age = "?" if i % 17 == 0 else "NA" if i % 23 == 0 else str(20 + i % 40)
        score = "high" if i == 5 else str(i % 10)
        lines.append(f"{age},{score},{int(i % 3 == 0)}")
    path.write_text("\n".join(lines) + "\n")
    table = load_table(path, "label")
    assert "age" in table.names and not any(n.startswith("age=") for n in table.names)
    age = table.x[:, table.names.index("age")]
    assert np.isnan(age[0]) and np.isnan(age[23]) and age[1] == 21
    assert any("'age'" in w and "'?'" in w and "'NA'" in w for w in table.warnings)
    assert any("'score'" in w and "'high'" in w for w in table.warnings)


def test_evaluate_reports_the_probability_checks(tmp_path: Path) -> None:
    """CV and time split carry a reliability table, Brier vs the constant guess and an
    AUC interval; on a real signal the Brier beats the constant guess."""
    result = evaluate(write_csv(tmp_path / "d.csv", n=1200), "converted", log=None)
    for key in ("cv", "time_split"):
        checks = result[key]["checks"]
        assert len(checks["reliability"]) == 10
        lo, hi = checks["roc_auc_95"]
        assert lo <= checks["roc_auc"] <= hi
    assert result["cv"]["checks"]["brier"] < result["cv"]["checks"]["brier_constant"]

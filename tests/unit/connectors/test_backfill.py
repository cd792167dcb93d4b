"""`nudge connect backfill hubspot` on a generated portal, then `nudge model train --events` on its file."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest

from cli import main
from tests.fakes.hubspot_server import FakeHubSpot, generate_portal
from tests.fakes.threaded import served

NOW = dt.datetime.now(dt.UTC)
pytestmark = pytest.mark.slow  # ~1 min: 3,000 contacts read and a model trained


def train(events: Path, data_dir: Path) -> dict[str, object]:
    """`nudge model train --events FILE` as a user runs it: its own process."""
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "model",
            "train",
            "--events",
            str(events),
            "--window-days",
            "730",
        ],
        env={**os.environ, "NUDGE_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout))


def test_backfill_reads_history_point_in_time_and_a_model_trains_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """3,000 contacts: every contact, stage change and call since 2y becomes one event, in time order;
    the file is 0600 and trains a model with the won deals as conversions."""
    with served(FakeHubSpot()) as portal:
        made = generate_portal(portal, 3000, now=NOW)
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", portal.access_token)
        monkeypatch.setenv("NUDGE_HUBSPOT_API_URL", portal.url)
        monkeypatch.setenv("NUDGE_DATA_DIR", str(tmp_path / "var"))
        out = tmp_path / "history.ndjson"
        assert main(["connect", "backfill", "hubspot", "--since", "2y", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "contacts: 3,000 read" in err and "nudge model train --events" in err
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    events = [json.loads(line) for line in out.read_text().splitlines()]
    kinds = {k: sum(e["type"] == k for e in events) for k in {e["type"] for e in events}}
    assert kinds["lead.created"] == made["contacts"]
    assert kinds["call.ended"] == made["calls"]
    assert kinds["deal.won"] == made["won"]
    assert len({e["event_id"] for e in events}) == len(events)
    times = [e["occurred_at"] for e in events]
    assert times == sorted(times)
    # each lead's creation comes before anything else about it
    first = {}
    for e in events:
        first.setdefault(e["lead_id"], e["type"])
    assert set(first.values()) == {"lead.created"}

    summary = train(out, tmp_path / "var")
    assert summary["positives"] >= 200

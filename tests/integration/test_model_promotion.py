"""A running worker switches to a newly promoted model without a restart, and every score
records the model version that made it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.integration.test_pipeline import at, hot_lead_events

pytestmark = pytest.mark.slow


def model_version(db: Path, lead_id: str) -> str | None:
    con = sqlite3.connect(db)
    try:
        row = con.execute(
            "SELECT model_version FROM leads WHERE lead_id = ?", (lead_id,)
        ).fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        con.close()
    return str(row[0]) if row and row[0] else None


def nudge(worker: Any, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=worker.env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=worker.data_dir.parent,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_promoted_model_takes_over_live(start_worker: Any, tmp_path: Path) -> None:
    """Points score until a model is promoted; then the next event is scored by the model."""
    worker = start_worker()
    worker.post_events(hot_lead_events(1, "Acme"))
    wait_for(lambda: model_version(worker.db, "lead-1") == "points-v1", timeout=30)

    events = tmp_path / "history.ndjson"
    nudge(worker, "model", "synth", "--leads", "1500", "--out", str(events))
    nudge(worker, "model", "train", "--events", str(events))
    listed = nudge(worker, "model", "list")
    version = listed.split()[0]
    assert version.startswith("m"), listed
    nudge(worker, "model", "promote", version)

    worker.post_events(
        [
            {
                "event_id": "after-promotion",
                "type": "page.viewed",
                "occurred_at": at(30),
                "source": "web",
                "lead_id": "lead-1",
                "path": "/pricing",
            }
        ]
    )
    wait_for(
        lambda: model_version(worker.db, "lead-1") == version,
        timeout=30,
        message=lambda: model_version(worker.db, "lead-1"),
    )

    nudge(worker, "model", "rollback")
    worker.post_events(
        [
            {
                "event_id": "after-rollback",
                "type": "page.viewed",
                "occurred_at": at(40),
                "source": "web",
                "lead_id": "lead-1",
                "path": "/pricing",
            }
        ]
    )
    wait_for(
        lambda: model_version(worker.db, "lead-1") == "points-v1",
        timeout=30,
        message=lambda: model_version(worker.db, "lead-1"),
    )
    assert os.path.isdir(worker.data_dir / "models" / version)
    # every live score was snapshotted with the model that made it, for the next training
    con = sqlite3.connect(worker.db)
    try:
        versions = dict(
            con.execute(
                "SELECT event_id, model_version FROM score_snapshots WHERE lead_id = 'lead-1'"
            )
        )
    finally:
        con.close()
    assert versions["lead-1-p1"] == "points-v1"
    assert versions["after-promotion"] == version
    assert versions["after-rollback"] == "points-v1"

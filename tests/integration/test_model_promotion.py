"""A running worker switches to a newly promoted model without a restart, and every score
records the model version that made it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import urllib.request
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


def ready_model(worker: Any) -> str:
    with urllib.request.urlopen(worker.url + "/ready", timeout=5) as r:
        return str(json.load(r)["model"])


def test_a_model_promoted_on_another_host_takes_over_through_postgresql(
    start_worker: Any, postgres: Any, tmp_path: Path
) -> None:
    """The worker and `nudge model` share only the PostgreSQL record (separate data
    dirs): a model trained and promoted on the 'training host' reaches the worker's own
    registry and scores its leads; a rollback there returns it to points."""
    url = postgres.database()
    worker = start_worker(NUDGE_DATABASE_URL=url, NUDGE_DATA_DIR=str(tmp_path / "worker-host"))
    assert ready_model(worker) == "points-v1"
    trainer = {**worker.env, "NUDGE_DATA_DIR": str(tmp_path / "training-host")}

    def nudge_there(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "cli", *args],
            env=trainer,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout

    events = tmp_path / "history.ndjson"
    nudge_there("model", "synth", "--leads", "1500", "--out", str(events))
    nudge_there("model", "train", "--events", str(events), "--promote")
    listed = nudge_there("model", "list").split()
    version = listed[1]  # "* <version> ...": the promoted one
    assert listed[0] == "*" and version.startswith("m"), listed
    wait_for(
        lambda: ready_model(worker) == version, timeout=30, message=lambda: ready_model(worker)
    )
    assert (tmp_path / "worker-host" / "models" / version / "model.json").is_file()
    nudge_there("model", "rollback")
    wait_for(lambda: ready_model(worker) == "points-v1", timeout=30)

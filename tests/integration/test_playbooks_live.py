"""Playbooks in a running worker: hot reload, and a message held for quiet hours that is
delivered when the window opens — after a worker restart in between."""

from __future__ import annotations

import datetime as dt
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.integration.test_pipeline import hot_lead_events, outbox, sent

pytestmark = pytest.mark.slow

RULE = """
name: hot-lead
description: test copy
owner: ops@example.com
version: {version}
rules:
  - id: crossed
    trigger: {{type: score.crossed_above, value: 0.7}}
    actions:
      - type: nudge
        to: owner
        template: "{text} {{{{ lead.company }}}}"
"""


def test_edited_playbook_is_picked_up_and_a_broken_edit_is_refused(
    start_worker: Any, tmp_path: Path
) -> None:
    """A changed template applies without restart; an invalid edit keeps the last good one."""
    folder = tmp_path / "pb"
    folder.mkdir()
    file = folder / "hot.yaml"
    file.write_text(RULE.format(version=1, text="FIRST"))
    worker = start_worker(NUDGE_PLAYBOOKS=str(folder))
    worker.post_events(hot_lead_events(1, "Acme"))
    wait_for(lambda: "FIRST Acme" in worker.output(), timeout=30, message=worker.stats)

    file.write_text(RULE.format(version=2, text="SECOND"))
    wait_for(lambda: worker.stats().get("playbooks.reloaded", 0) >= 1, timeout=15)
    worker.post_events(hot_lead_events(2, "Birchwood"))
    wait_for(lambda: "SECOND Birchwood" in worker.output(), timeout=30, message=worker.stats)

    file.write_text("name: hot-lead\nrules: [\n")  # broken YAML
    time.sleep(3)  # two reload passes
    worker.post_events(hot_lead_events(3, "Cobalt"))
    wait_for(lambda: "SECOND Cobalt" in worker.output(), timeout=30, message=worker.stats)
    assert worker.process is not None and worker.process.poll() is None


def test_quiet_hours_hold_survives_a_restart(start_worker: Any) -> None:
    """Triggered outside the sending window: held, not sent; sent once when the window opens,
    by a worker started after the one that held it was killed."""
    now = dt.datetime.now(dt.UTC)
    # the window opens on a minute boundary at least 45 s away: time for a worker to start
    # and hold the nudge even on a loaded machine
    opens = (now + dt.timedelta(seconds=60)).replace(second=0, microsecond=0)
    if (opens - now).total_seconds() < 45:
        opens += dt.timedelta(minutes=1)
    # the window runs from `opens` round midnight to the start of this minute: closed now
    closes = now.replace(second=0, microsecond=0)
    env = {
        "NUDGE_QUIET_HOURS_START": opens.strftime("%H:%M"),
        "NUDGE_QUIET_HOURS_END": closes.strftime("%H:%M"),
    }
    worker = start_worker(**env)
    worker.post_events(hot_lead_events(7, "Harbor Point"))
    rows = wait_for(
        lambda: [r for r in outbox(worker.db) if r["state"] == "held"],
        timeout=30,
        message=worker.stats,
    )
    assert len(rows) == 1 and rows[0]["not_before"].startswith(opens.isoformat()[:16])
    worker.kill(signal.SIGKILL)
    worker.env.update(env)
    worker.start()
    assert not sent(worker.db), "sent before the window opened"
    wait_for(
        lambda: sent(worker.db), timeout=(opens - dt.datetime.now(dt.UTC)).total_seconds() + 30
    )
    [row] = outbox(worker.db)
    assert row["state"] == "sent"
    assert dt.datetime.fromisoformat(row["sent_at"]) >= opens
    assert worker.output().count("Harbor Point is hot") == 1

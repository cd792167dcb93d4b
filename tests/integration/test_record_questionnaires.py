"""The manager's questionnaires end to end (the record's reproduction 7): a worker asks a
questionnaire from the ``NUDGE_QUESTIONNAIRES`` folder, picks up an edit of it while it
runs, and ``nudge playbooks check`` run with the same settings — and the worker itself —
refuse an ``ask`` of a questionnaire that none of them defines, naming file and line.

Set-up (rep, leads, meetings, the fake Twilio, ``nudge leads show``) is the record's own
(:mod:`tests.integration.test_record`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, WorkerProcess
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.test_conversation import until
from tests.integration.test_record import lead, meeting, rep, show, text, texted, twilio_env

pytestmark = pytest.mark.slow

BUDGET = """id: budget-check
title: Budget
intro: "One question about {subject}."
questions:
  - id: owner
    type: text
    text: Who owns the budget?
    field: lead.custom.budget_owner
"""

ASKS = """name: asks-{name}
description: asks {name} after every meeting
owner: ops@example.com
version: 1
rules:
  - id: ask
    trigger: {{type: event, event: meeting.ended}}
    actions:
      - type: ask
        questionnaire: {name}
        to: owner
"""


def check(worker: WorkerProcess, *paths: Path) -> subprocess.CompletedProcess[str]:
    """``nudge playbooks check PATHS`` with the worker's settings (its NUDGE_QUESTIONNAIRES)."""
    return subprocess.run(
        [sys.executable, "-m", "cli", "playbooks", "check", *map(str, paths)],
        env=worker.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def readiness(worker: WorkerProcess) -> dict[str, Any]:
    """The worker's ``/ready`` document (its status code aside)."""
    req = urllib.request.Request(worker.url + "/ready", headers=worker.headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            doc: dict[str, Any] = json.load(r)
    except urllib.error.HTTPError as err:
        doc = json.load(err)
    return doc


def save(path: Path, content: str) -> None:
    """Write ``content`` and move the mtime on, as an editor's save does."""
    path.write_text(content)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


async def test_a_managers_questionnaire_is_asked_reloaded_and_checked(
    start_worker: Any, twilio_fake: FakeTwilio, tmp_path: Path
) -> None:
    """Reproduction 7: the worker asks the manager's questionnaire from NUDGE_QUESTIONNAIRES
    and records its answer; edited while the worker runs, its next asking uses the new
    text; `nudge playbooks check` accepts the questionnaire file and the playbook asking
    it, and refuses an `ask` of an unknown questionnaire with file:line; so does the running
    worker, until that questionnaire exists."""
    mine, books = tmp_path / "questionnaires", tmp_path / "books"
    mine.mkdir()
    books.mkdir()
    (mine / "budget.yaml").write_text(BUDGET)
    asks = books / "asks.yaml"
    asks.write_text(ASKS.format(name="budget-check"))
    worker = start_worker(
        NUDGE_PLAYBOOKS=str(books), NUDGE_QUESTIONNAIRES=str(mine), **twilio_env(twilio_fake)
    )
    worker.post_events([rep(), lead(1, "Acme"), lead(2, "Birchwood")])
    for n in (1, 2):
        await until(lambda n=n: show(worker, f"lead-{n}")["profile"].get("owner_rep_id"))
    worker.post_events([meeting(1, 60)])
    assert await texted(twilio_fake, 1, "the question") == (
        "One question about Acme. Who owns the budget?"
    )
    await text(worker, twilio_fake, "the CFO")
    assert "saved 1 answer on Acme" in await texted(twilio_fake, 2, "the closing text")
    answers = await until(lambda: show(worker, "lead-1")["answers"], what="the answer")
    assert [(a["questionnaire_id"], a["value"]) for a in answers] == [("budget-check", "the CFO")]
    assert show(worker, "lead-1")["profile"]["custom"]["budget_owner"] == "the CFO"

    reloaded = worker.stats().get("questionnaires.reloaded", 0)
    save(mine / "budget.yaml", BUDGET.replace("Who owns the budget?", "Who signs the budget?"))
    await until(
        lambda: worker.stats().get("questionnaires.reloaded", 0) > reloaded, what="the reload"
    )
    worker.post_events([meeting(2, 90)])
    assert await texted(twilio_fake, 3, "the edited question") == (
        "One question about Birchwood. Who signs the budget?"
    )

    ok = check(worker, mine / "budget.yaml", asks)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok (questionnaire budget-check)" in ok.stdout and "did you mean" not in ok.stdout
    unknown = books / "asks-unknown.yaml"
    unknown.write_text(ASKS.format(name="my-own"))
    refused = check(worker, unknown)
    assert refused.returncode == 1, refused.stdout
    assert f"{unknown}:10:" in refused.stderr, refused.stderr
    assert "unknown questionnaire `my-own`" in refused.stderr
    assert "budget-check" in refused.stderr  # the known ones are named, the manager's too

    # the running worker refuses it too (nothing of it runs) and says so on /ready
    ready = await until(
        lambda: (r := readiness(worker))["playbooks"] is not True and r, what="the refusal"
    )
    assert any(
        f"{unknown}:10:" in p and "unknown questionnaire `my-own`" in p for p in ready["playbooks"]
    ), ready
    save(mine / "my-own.yaml", BUDGET.replace("budget-check", "my-own"))
    await until(lambda: readiness(worker)["playbooks"] is True, what="accepted once it exists")

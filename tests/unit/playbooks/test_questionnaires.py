"""The manager's questionnaires (the record's reproduction 7): loaded from
NUDGE_QUESTIONNAIRES, hot-reloaded with the last good version kept, and checked by
``nudge playbooks check`` with file:line errors — an ``ask`` of an unknown one included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli import main
from playbooks.questionnaire import QUESTIONNAIRES
from playbooks.questionnaires import QuestionnaireSet

MINE = """id: my-own
title: Mine
questions:
  - id: budget
    type: yes_no
    text: Is there budget this quarter?
    field: lead.custom.budget
"""

ASKS_MINE = """name: asks-mine
description: asks the manager's questionnaire
owner: ops@example.com
version: 1
rules:
  - id: ask
    trigger: {type: event, event: meeting.ended}
    actions:
      - type: ask
        questionnaire: my-own
"""


def bump(path: Path, text: str) -> None:
    """Write ``text`` and move the file's mtime on, as an editor's save does."""
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def test_a_managers_folder_is_loaded_and_hot_reloaded(tmp_path: Path) -> None:
    """A questionnaire in the manager's folder is there beside the bundled ones; a broken
    edit keeps the last good version and says where; a fixed edit is picked up."""
    mine = tmp_path / "my-own.yaml"
    mine.write_text(MINE)
    qs = QuestionnaireSet([tmp_path])
    assert {"my-own", "post-meeting"} <= set(qs.questionnaires)
    bump(mine, MINE.replace("type: yes_no", "type: yes_or_no"))
    changes = qs.refresh()
    assert changes and "keeping the last good version of my-own" in changes[0]
    assert qs.get("my-own") is not None
    assert any(f"{mine}:5" in line for line in qs.problems[str(mine)])
    bump(mine, MINE.replace("Is there budget", "Is budget approved"))
    assert qs.refresh() == [f"{mine}: loaded questionnaire my-own"]
    question = qs.questionnaires["my-own"].questions[0]
    assert question.text.startswith("Is budget approved")


def test_check_accepts_a_questionnaire_file(capsys: pytest.CaptureFixture[str]) -> None:
    """`nudge playbooks check playbooks/questionnaires/post-meeting.yaml` checks it as a
    questionnaire (it used to say "unknown key `id`")."""
    assert main(["playbooks", "check", str(QUESTIONNAIRES / "post-meeting.yaml")]) == 0
    assert "ok (questionnaire post-meeting)" in capsys.readouterr().out


def test_ask_of_an_unknown_questionnaire_is_a_check_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ask: {questionnaire: my-own}` is refused with its file:line unless my-own is
    checked beside it or configured."""
    playbook = tmp_path / "asks.yaml"
    playbook.write_text(ASKS_MINE)
    assert main(["playbooks", "check", str(playbook)]) == 1
    err = capsys.readouterr().err
    assert f"{playbook}:10:" in err and "unknown questionnaire `my-own`" in err
    (tmp_path / "my-own.yaml").write_text(MINE)
    assert main(["playbooks", "check", str(tmp_path)]) == 0


def test_a_broken_questionnaire_fails_check_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A questionnaire with an unknown question type is refused, naming file and line."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINE.replace("type: yes_no", "type: yes_or_no"))
    assert main(["playbooks", "check", str(bad)]) == 1
    out = capsys.readouterr()
    assert f"{bad}:5" in out.err and f"{bad}: REFUSED" in out.out


def test_the_worker_refuses_an_ask_of_an_unknown_questionnaire_as_check_does(
    tmp_path: Path,
) -> None:
    """A running playbook set built with `checking_asks` refuses a playbook asking my-own
    (file:line, nothing of it running) until my-own is configured; then it loads."""
    from playbooks.questionnaires import checking_asks
    from playbooks.registry import PlaybookSet

    books, mine = tmp_path / "books", tmp_path / "mine"
    books.mkdir()
    mine.mkdir()
    (books / "asks.yaml").write_text(ASKS_MINE)
    questionnaires = QuestionnaireSet([mine])
    running = PlaybookSet([books], check=checking_asks(questionnaires))
    assert running.playbooks == []
    [problem] = running.refused()[str(books / "asks.yaml")]
    assert f"{books / 'asks.yaml'}:10:" in problem and "unknown questionnaire `my-own`" in problem
    (mine / "my-own.yaml").write_text(MINE)
    assert questionnaires.refresh()  # loaded: the playbooks are checked again
    running.recheck()
    assert [pb.name for pb in running.playbooks] == ["asks-mine"] and running.refused() == {}

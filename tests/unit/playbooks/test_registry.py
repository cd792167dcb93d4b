"""Hot reload: changed files are re-read; a bad edit keeps the last good version."""

from __future__ import annotations

import os
from pathlib import Path

from structlog.testing import capture_logs

from playbooks import PlaybookSet

GOOD = """name: p
owner: me
version: {v}
rules:
  - id: r
    trigger: {{type: score.crossed_above, value: 0.5}}
    actions: [{{type: nudge, template: hi}}]
"""


def write(path: Path, text: str, bump: int) -> None:
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


def test_reload_picks_up_a_changed_file(tmp_path: Path) -> None:
    """Editing a file is seen on the next refresh, without restarting anything."""
    f = tmp_path / "p.yaml"
    write(f, GOOD.format(v=1), 0)
    pbs = PlaybookSet([tmp_path])
    assert [p.version for p in pbs.playbooks] == [1]
    assert pbs.refresh() == []  # nothing changed: nothing re-read
    write(f, GOOD.format(v=2), 1)
    assert pbs.refresh() and [p.version for p in pbs.playbooks] == [2]


def test_bad_edit_is_refused_and_logged_last_good_keeps_running(tmp_path: Path) -> None:
    """A file that no longer validates is refused with its errors; version 1 keeps running."""
    f = tmp_path / "p.yaml"
    write(f, GOOD.format(v=1), 0)
    pbs = PlaybookSet([tmp_path])
    with capture_logs() as logs:
        write(f, GOOD.format(v=2).replace("trigger", "triger"), 1)
        pbs.refresh()
    assert [p.version for p in pbs.playbooks] == [1]
    assert any("triger" in str(e.get("problem")) for e in logs)
    assert str(f) in pbs.problems()


def test_new_and_removed_files(tmp_path: Path) -> None:
    """A new file starts its playbook; deleting a file stops it."""
    pbs = PlaybookSet([tmp_path])
    assert pbs.playbooks == []
    f = tmp_path / "p.yaml"
    write(f, GOOD.format(v=1), 0)
    pbs.refresh()
    assert len(pbs.playbooks) == 1
    f.unlink()
    pbs.refresh()
    assert pbs.playbooks == []

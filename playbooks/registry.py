"""Hot reload: the set of running playbooks, refreshed from disk without a restart.

:meth:`PlaybookSet.refresh` is cheap enough to call before every batch: it
``stat``s the files and re-reads only those whose mtime or size changed. A file
that no longer validates is refused — its errors are logged — and the last good
version of its playbook keeps running; a deleted file stops its playbook. No
exception escapes a refresh, so a bad edit never stops a worker.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nudge.logs import get_logger
from playbooks import messages as msg
from playbooks.loader import Checked, Problem, check_file, playbook_files
from playbooks.model import Playbook
from playbooks.windows import Window, windows_of

log = get_logger(__name__)


@dataclass
class _Entry:
    stamp: tuple[int, int]
    playbook: Playbook | None
    problems: list[Problem] = field(default_factory=list)


class PlaybookSet:
    """The playbooks under ``paths`` (files or directories), kept current by :meth:`refresh`."""

    def __init__(
        self, paths: list[Path] | None = None, check: Callable[[Path], Checked] = check_file
    ) -> None:
        self.paths = paths
        self.check = check
        """How a file is checked (the worker also refuses an ``ask`` of an unknown
        questionnaire: ``playbooks.questionnaires.checking_asks``)."""
        self._entries: dict[Path, _Entry] = {}
        self._windows: tuple[tuple[int, ...], dict[str, Window]] | None = None
        self.refresh()

    @property
    def playbooks(self) -> list[Playbook]:
        """The running playbooks (last good version of each file), in file order."""
        seen: set[str] = set()
        out = []
        for path in sorted(self._entries):
            pb = self._entries[path].playbook
            if pb is not None and pb.name not in seen:
                seen.add(pb.name)
                out.append(pb)
        return out

    @property
    def windows(self) -> dict[str, Window]:
        """The windowed counts the running playbooks read (recomputed when they change)."""
        playbooks = self.playbooks
        ids = tuple(id(pb) for pb in playbooks)
        if self._windows is None or self._windows[0] != ids:
            self._windows = (ids, windows_of(playbooks))
        return self._windows[1]

    def refused(self) -> dict[str, list[str]]:
        """Files refused with no good version running (a broken file at start-up, or a
        new file that never validated): file → its errors, as ``file:line:col: ...``."""
        return {
            str(path): [str(p) for p in e.problems if p.severity == "error"]
            for path, e in sorted(self._entries.items())
            if e.playbook is None and e.problems
        }

    def problems(self) -> dict[str, list[Problem]]:
        """The problems of the latest read of each file (errors mean it was refused)."""
        return {str(p): e.problems for p, e in self._entries.items() if e.problems}

    def recheck(self) -> list[str]:
        """Check every file again, changed or not: what they refer to (the questionnaires)
        changed. Like :meth:`refresh`, a file now refused keeps its last good version."""
        for entry in self._entries.values():
            entry.stamp = (-1, -1)
        return self.refresh()

    def refresh(self) -> list[str]:
        """Re-read changed files; return what changed, as log-style lines."""
        changes: list[str] = []
        try:
            files = playbook_files(self.paths)
        except OSError as exc:
            log.error(msg.RELOAD_REFUSED, error=str(exc))
            return changes
        current = set(files)
        for gone in [p for p in self._entries if p not in current]:
            del self._entries[gone]
            log.warning(msg.RELOAD_REMOVED, file=str(gone))
            changes.append(f"{gone}: removed")
        for path in files:
            try:
                st = os.stat(path)
            except OSError:
                continue
            stamp = (st.st_mtime_ns, st.st_size)
            entry = self._entries.get(path)
            if entry is not None and entry.stamp == stamp:
                continue
            checked: Checked = self.check(path)
            previous = entry.playbook if entry else None
            if checked.playbook is None:
                text = msg.RELOAD_REFUSED if previous is not None else msg.REFUSED_NOT_RUNNING
                for problem in checked.errors:
                    log.error(text, file=str(path), problem=str(problem))
                self._entries[path] = _Entry(stamp, previous, checked.problems)
                changes.append(f"{path}: refused ({len(checked.errors)} errors)")
                continue
            self._entries[path] = _Entry(stamp, checked.playbook, checked.problems)
            if previous != checked.playbook:
                log.info(
                    msg.RELOAD_LOADED,
                    file=str(path),
                    playbook=checked.playbook.name,
                    version=checked.playbook.version,
                )
                changes.append(
                    f"{path}: loaded {checked.playbook.name} v{checked.playbook.version}"
                )
        return changes

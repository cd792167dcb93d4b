"""Hot reload: the set of running playbooks, refreshed from disk without a restart.

:meth:`PlaybookSet.refresh` is cheap enough to call before every batch: it
``stat``s the files and re-reads only those whose mtime or size changed. A file
that no longer validates is refused — its errors are logged — and the last good
version of its playbook keeps running; a deleted file stops its playbook. No
exception escapes a refresh, so a bad edit never stops a worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from nudge.logs import get_logger
from playbooks import messages as msg
from playbooks.loader import Checked, Problem, check_file, playbook_files
from playbooks.model import Playbook

log = get_logger(__name__)


@dataclass
class _Entry:
    stamp: tuple[int, int]
    playbook: Playbook | None
    problems: list[Problem] = field(default_factory=list)


class PlaybookSet:
    """The playbooks under ``paths`` (files or directories), kept current by :meth:`refresh`."""

    def __init__(self, paths: list[Path] | None = None) -> None:
        self.paths = paths
        self._entries: dict[Path, _Entry] = {}
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

    def problems(self) -> dict[str, list[Problem]]:
        """The problems of the latest read of each file (errors mean it was refused)."""
        return {str(p): e.problems for p, e in self._entries.items() if e.problems}

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
            checked: Checked = check_file(path)
            previous = entry.playbook if entry else None
            if checked.playbook is None:
                for problem in checked.errors:
                    log.error(msg.RELOAD_REFUSED, file=str(path), problem=str(problem))
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

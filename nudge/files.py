"""Permissions of what Nudge writes: lead data and secrets readable by their owner only.

The SQLite record (and its ``-wal``/``-shm`` files) holds phone numbers and emails, the
data directory holds the dev Twilio token and models trained on lead data. Every Nudge
process runs with umask 077, so what it creates is 0600 (directories 0700) however the
library underneath opens it; :func:`secure_data_dir` also tightens what an earlier
version left readable.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
SECRET_FILES = ("dev_twilio_token",)


def private_umask() -> None:
    """New files 0600, new directories 0700, for the rest of this process."""
    os.umask(PRIVATE_UMASK)


def _tighten(path: Path, mode: int) -> None:
    with contextlib.suppress(FileNotFoundError, PermissionError):
        if stat.S_IMODE(path.stat().st_mode) & ~mode:
            path.chmod(stat.S_IMODE(path.stat().st_mode) & mode)


def secure_data_dir(data_dir: Path, database: Path) -> None:
    """Create ``data_dir`` 0700; make it, the database files and secrets owner-only."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(data_dir, 0o700)
    for path in database.parent.glob(database.name + "*"):
        _tighten(path, 0o600)
    for name in SECRET_FILES:
        _tighten(data_dir / name, 0o600)

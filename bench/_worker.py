"""A `nudge worker` process for the benchmarks: start it, wait until it is ready, read its
figures, and wait until it has handled everything produced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from cli.demo import nudges_settled


def start_worker(
    env: dict[str, str], stderr: IO[bytes] | int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """`python -m cli worker` with ``env``; its stdout (the console notifier's boxes) dropped."""
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "worker"], env=env, stdout=subprocess.DEVNULL, stderr=stderr
    )


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as r:
        data: dict[str, Any] = json.load(r)
        return data


def wait_ready(base: str, deadline: float, failure: str) -> None:
    """Poll ``base``/ready until it says ready; SystemExit(``failure``) after ``deadline``
    (a ``time.monotonic()`` value)."""
    while True:
        try:
            if get(base + "/ready").get("ready"):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(failure)
        time.sleep(0.1)


def wait_handled(
    stats: Callable[[], dict[str, Any]], lead_events: int, started: float, poll: float
) -> dict[str, Any]:
    """Poll ``stats()`` (the workers' /stats) until every lead event was evaluated and every
    nudge sent to delivery handled; the last figures. SystemExit 900 s after ``started`` (perf_counter)."""
    while True:
        s = stats()
        evaluated = s.get("signals.evaluated", 0) + s.get("signals.skipped", 0)
        if evaluated >= lead_events and nudges_settled(s):
            return s
        if time.perf_counter() - started > 900:
            raise SystemExit(f"pipeline did not finish: {s}")
        time.sleep(poll)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (steadier than wall time on a busy VM)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

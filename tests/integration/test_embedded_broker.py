"""`nudge worker` with no KAFKA_URL owns an embedded broker: started, ready fast, always stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from broker import free_port
from tests.conftest import wait_for

pytestmark = pytest.mark.slow


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def start(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_URL", "NUDGE_KAFKA_URL")}
    env.update(NUDGE_DATA_DIR=str(tmp_path), NUDGE_WEB_PORT=str(port))
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: ready(port), timeout=60)
    return proc, port, time.monotonic() - started


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_broker_stops_with_the_worker(tmp_path: Path, sig: int) -> None:
    """Ctrl-C stops worker and broker; SIGKILL of the worker still takes the broker down."""
    proc, _, seconds = start(tmp_path)
    try:
        brokers = [
            p
            for p in children(proc.pid)
            if "tansu" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
        ]
        assert len(brokers) == 1, "the worker should have started exactly one broker"
        assert seconds < 15, f"worker took {seconds:.1f} s to be ready"
        proc.send_signal(sig)
        proc.wait(timeout=30)
        wait_for(lambda: not alive(brokers[0]), timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()

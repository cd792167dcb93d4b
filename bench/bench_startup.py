"""Worker start-up: seconds from `nudge worker` (embedded broker) to `/ready`, over a few runs.

    python bench/bench_startup.py [--runs 3]

The goal is under 5 s: Faust's defaults make it ~30 s on Tansu (see README,
"Fast start-up").
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _worker import start_worker  # noqa: E402

from broker import free_port  # noqa: E402


def once() -> float:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_URL", "NUDGE_KAFKA_URL")}
        env.update(NUDGE_DATA_DIR=tmp, NUDGE_WEB_PORT=str(port), PYTHONPATH=str(ROOT))
        started = time.monotonic()
        proc = start_worker(env)
        try:
            while time.monotonic() - started < 120:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
                        if r.status == 200:
                            return time.monotonic() - started
                except OSError:
                    time.sleep(0.05)
            raise SystemExit("worker never became ready")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    runs = [once() for _ in range(ap.parse_args().runs)]
    print(
        f"worker ready after (s): {', '.join(f'{r:.2f}' for r in runs)}; "
        f"median {statistics.median(runs):.2f} s (process start → /ready 200, embedded broker)"
    )


if __name__ == "__main__":
    main()

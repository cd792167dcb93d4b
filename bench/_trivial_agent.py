"""A trivial Faust agent that counts messages: the framework's floor cost.

Run by bench_pipeline.py as a subprocess: consumes ``TOPIC`` until ``N`` messages
were seen, prints the elapsed wall and CPU seconds from first to last message, and exits.
"""

from __future__ import annotations

import os
import sys
import time

import faust

BROKER, TOPIC, N = os.environ["BENCH_BROKER"], os.environ["BENCH_TOPIC"], int(os.environ["BENCH_N"])
app = faust.App(
    f"bench-trivial-{os.getpid()}",
    broker=BROKER,
    store="memory://",
    broker_session_timeout=6.0,
    broker_heartbeat_interval=1.0,
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    datadir=f"/tmp/bench-trivial-{os.getpid()}",
)
topic = app.topic(TOPIC, key_serializer="raw", value_serializer="raw")
state = {"n": 0, "first": 0.0, "cpu": 0.0}


@app.agent(topic)
async def count(stream):  # type: ignore[no-untyped-def]
    async for _ in stream:
        if state["n"] == 0:
            state["first"], state["cpu"] = time.perf_counter(), time.process_time()
        state["n"] += 1
        if state["n"] >= N:
            elapsed, cpu = time.perf_counter() - state["first"], time.process_time() - state["cpu"]
            os.write(1, f"ELAPSED {elapsed:.4f} CPU {cpu:.4f}\n".encode())
            os._exit(0)


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "error", "--without-web"]
    app.main()

"""A quix-streams app that counts per key, with RocksDB state and a changelog topic.

Run by bench_pipeline.py with ``bench/.venv-quix/bin/python`` (quix-streams is a tool of
the benchmark, not a dependency of Nudge): consumes ``BENCH_TOPIC`` until ``BENCH_N``
messages were counted, prints the wall and CPU seconds from first to last message.
"""

from __future__ import annotations

import os
import time
from typing import Any

from quixstreams import Application, State

N = int(os.environ["BENCH_N"])
seen = {"n": 0, "first": 0.0, "cpu": 0.0}
app = Application(
    broker_address=os.environ["BENCH_BOOTSTRAP"],
    consumer_group=f"bench-quix-{os.getpid()}",
    auto_offset_reset="earliest",
    state_dir=os.environ["BENCH_STATE_DIR"],
    loglevel="ERROR",
)
topic = app.topic(os.environ["BENCH_TOPIC"], value_deserializer="json")
# Tansu's topic configs carry no retention.ms, which quix-streams reads to size the changelog
topic.broker_config.extra_config.setdefault("retention.ms", "-1")


def count(value: Any, state: State) -> None:
    state.set("n", state.get("n", 0) + 1)
    if seen["n"] == 0:
        seen["first"], seen["cpu"] = time.perf_counter(), time.process_time()
    seen["n"] += 1
    if seen["n"] >= N:
        wall, cpu = time.perf_counter() - seen["first"], time.process_time() - seen["cpu"]
        os.write(1, f"ELAPSED {wall:.4f} CPU {cpu:.4f}\n".encode())
        os._exit(0)


app.dataframe(topic).update(count, stateful=True)

if __name__ == "__main__":
    app.run()

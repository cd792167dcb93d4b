"""Embedded broker storage: memory vs persistent (Tansu on a local SeaweedFS S3 store).

    python bench/bench_broker_storage.py [--messages 20000] [--size 300] [--runs 3]

For each storage mode, on a fresh data directory, prints the median of ``--runs``:
  1. start-up: from ``EmbeddedBroker.start()`` to a broker answering metadata
     (cold: empty directory; warm: restart on the data just written);
  2. produce rate: ``--messages`` values of ``--size`` bytes, 4 partitions, acks=all,
     the producer's default batching (``send`` then ``flush``);
  3. produce rate one at a time (``send_and_wait``, 500 messages), as a Faust agent
     that forwards an event and waits for the ack pays it;
  4. consume rate: all of them back with ``getmany`` (no decoding), after a restart
     for the persistent mode (so it reads from the store, not a warm cache);
  5. stop time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from broker import EmbeddedBroker  # noqa: E402

TOPIC = "bench.storage"
PARTITIONS = 4
ONE_BY_ONE = 500


async def produce(bootstrap: str, n: int, size: int) -> float:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])
    finally:
        await admin.close()
    value = b"x" * size
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        t = time.perf_counter()
        for i in range(n):
            await producer.send(TOPIC, value, key=str(i).encode())
        await producer.flush()
        return n / (time.perf_counter() - t)
    finally:
        await producer.stop()


async def produce_one_by_one(bootstrap: str, n: int, size: int) -> float:
    value = b"y" * size
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        t = time.perf_counter()
        for i in range(n):
            await producer.send_and_wait(TOPIC + ".single", value, key=str(i).encode())
        return n / (time.perf_counter() - t)
    finally:
        await producer.stop()


async def consume(bootstrap: str, n: int) -> float:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        got = 0
        t = time.perf_counter()
        while got < n:
            batch = await consumer.getmany(timeout_ms=2000, max_records=5000)
            if not batch:
                raise RuntimeError(f"only {got} of {n} messages came back")
            got += sum(len(msgs) for msgs in batch.values())
        return n / (time.perf_counter() - t)
    finally:
        await consumer.stop()


def timed_start(storage: str, data_dir: Path) -> tuple[EmbeddedBroker, float]:
    broker = EmbeddedBroker(log_file=data_dir / "broker.log", storage=storage, data_dir=data_dir)  # type: ignore[arg-type]
    t = time.perf_counter()
    broker.start()
    return broker, time.perf_counter() - t


def timed_stop(broker: EmbeddedBroker) -> float:
    t = time.perf_counter()
    broker.stop()
    return time.perf_counter() - t


def one_run(storage: str, n: int, size: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        broker, cold = timed_start(storage, data_dir)
        try:
            rate_in = asyncio.run(produce(broker.bootstrap, n, size))
            rate_single = asyncio.run(produce_one_by_one(broker.bootstrap, ONE_BY_ONE, size))
            if storage == "persistent":
                stop = timed_stop(broker)
                broker, warm = timed_start(storage, data_dir)
            else:  # a memory broker keeps nothing to restart on
                warm = float("nan")
            rate_out = asyncio.run(consume(broker.bootstrap, n))
        finally:
            final_stop = timed_stop(broker)
        if storage != "persistent":
            stop = final_stop
    return {
        "start cold (s)": cold,
        "start warm, with data (s)": warm,
        "produce, batched (msg/s)": rate_in,
        "produce, one at a time (msg/s)": rate_single,
        "consume, getmany (msg/s)": rate_out,
        "stop (s)": stop,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    for storage in ("memory", "persistent"):
        runs = [one_run(storage, args.messages, args.size) for _ in range(args.runs)]
        results[storage] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}

    print(
        f"embedded broker storage: {args.messages} messages of {args.size} B, "
        f"{PARTITIONS} partitions, median of {args.runs} runs"
    )
    print(f"{'':34} {'memory':>12} {'persistent':>12}")
    for key in results["memory"]:
        m, p = results["memory"][key], results["persistent"][key]
        fmt = "{:>12,.0f}" if "msg/s" in key else "{:>12.2f}"
        print(f"{key:34} {fmt.format(m) if m == m else '—':>12} {fmt.format(p):>12}")


if __name__ == "__main__":
    main()

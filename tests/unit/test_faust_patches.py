"""The workarounds streams.app applies to Faust's rebalance handling, on stand-ins."""

from __future__ import annotations

import asyncio
from typing import Any

from streams.app import _seek_again_after_recovery


class FakeConsumer:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.tps = {"nudges/3"}

    def assignment(self) -> set[str]:
        return self.tps

    async def perform_seek(self) -> None:
        self.calls.append("seek")


class FakeApp:
    def __init__(self, calls: list[str]) -> None:
        self.consumer = FakeConsumer(calls)
        self.consumer_generation_id = 2

        class Conf:
            broker_request_timeout = 5.0

        self.conf = Conf()


def fake_recovery(calls: list[str], *, rebalanced: bool = False) -> Any:
    class Recovery:
        def __init__(self) -> None:
            self.app = FakeApp(calls)

        async def on_recovery_completed(self, generation_id: int = 0) -> None:
            calls.append("seek")  # Faust's own seek, then flow resumes: queues cleared
            calls.append("clear")
            if rebalanced:
                self.app.consumer_generation_id += 1

        async def _wait(self, coro: Any, timeout: float) -> None:
            await coro

    return Recovery


def test_stream_partitions_are_sought_again_after_the_queues_are_cleared() -> None:
    calls: list[str] = []
    recovery = fake_recovery(calls)
    _seek_again_after_recovery(recovery)
    _seek_again_after_recovery(recovery)  # idempotent: wrapped once
    asyncio.run(recovery().on_recovery_completed(2))
    assert calls == ["seek", "clear", "seek"]


def test_no_second_seek_when_a_new_rebalance_began() -> None:
    calls: list[str] = []
    recovery = fake_recovery(calls, rebalanced=True)
    _seek_again_after_recovery(recovery)
    asyncio.run(recovery().on_recovery_completed(2))
    assert calls == ["seek", "clear"]

